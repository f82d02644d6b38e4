#!/bin/sh
# One short run for a GPU host: builds the bench model (cached under the OS temp dir) and runs the runtime
# bench (vision ms/tile, decode by context vs the naive loop, screening exam) on WebGPU (onnxruntime-node's
# bundled provider; needs a Vulkan driver, e.g. NVIDIA's, or Mesa's for a correctness-only run).
# Default: VOLMO-2B size (--full: 24 LLM + 24 vision layers, int4; the build takes a few minutes on 16 cores).
# LAYERS=N runs the small bench model instead (N layers, fp32). Extra arguments go to the bench.
# Paste the printed tables into docs/benchmarks.md with the GPU's name.
set -eu
cd "$(dirname "$0")/.."
if [ -n "${LAYERS:-}" ]; then size="--layers=$LAYERS"; else size="--full"; fi
node bin/volmo.js bench runtime --ep=webgpu "$size" --steps=16 --baseline=none --verbose "$@"
