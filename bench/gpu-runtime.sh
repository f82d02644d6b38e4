#!/bin/sh
# One short run for a GPU host: builds the bench model (cached under the OS temp dir) and runs the runtime
# bench on WebGPU (onnxruntime-node's bundled provider; needs a Vulkan driver, e.g. NVIDIA's or Mesa's).
# LAYERS=24 measures the full VOLMO-2B depth (builds ~7 GB of fp32 weights first).
# Paste the printed tables into docs/benchmarks.md with the GPU's name.
set -eu
cd "$(dirname "$0")/.."
LAYERS="${LAYERS:-2}"
node bin/volmo.js bench runtime --ep=webgpu --layers="$LAYERS" --steps=16 --verbose "$@"
