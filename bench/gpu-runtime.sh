#!/bin/sh
# One-shot runtime bench for a fresh GPU host (x86-64, NVIDIA driver present, no internet, the Vulkan loader
# possibly missing), within BUDGET_S seconds (480 = 8 minutes) in all:
#   1. libvulkan absent -> unpacks the Debian Vulkan/EGL loader packages carried in $GL_DIR (.gl/, downloaded
#      beforehand on a machine with apt: docs/benchmarks.md §GPU) into / and runs ldconfig;
#   2. no Vulkan driver manifest in the standard folders -> points VK_DRIVER_FILES (and the EGL vendor file)
#      at the NVIDIA driver's, wherever the driver installed it;
#   3. prints the GPU's name (nvidia-smi), then builds the VOLMO-2B-size bench model (24 + 24 layers, fp16
#      weights by default on GPU; cached under the OS temp dir) and runs vision ms/tile, decode ms/token by
#      context and the screening exam on WebGPU (onnxruntime-node's bundled provider). The bench refuses to
#      report figures when WebGPU falls back to CPU.
# Usage: bench/gpu-runtime.sh [--dry-run] [--layers=N] [--dtype=fp16|fp32|int4] [bench options ...]
#   --dry-run   print what would be unpacked, exported and run; change nothing, run nothing
#   --layers=N  the small bench model (N LLM layers, 1 vision layer) instead of VOLMO-2B size
# Environment: GL_DIR (.gl), GL_ROOT (/: where the packages unpack), BUDGET_S (480), VK_ICD_DIRS (folders
# searched for a Vulkan driver manifest), NVIDIA_ICD_FILES / NVIDIA_EGL_FILES (candidate NVIDIA manifests).
# Paste the printed tables into docs/benchmarks.md with the GPU's name.
set -eu
cd "$(dirname "$0")/.."

GL_DIR=${GL_DIR:-.gl}
GL_ROOT=${GL_ROOT:-/}
BUDGET_S=${BUDGET_S:-480}
VK_ICD_DIRS=${VK_ICD_DIRS:-/etc/vulkan/icd.d /usr/share/vulkan/icd.d /usr/local/share/vulkan/icd.d}
NVIDIA_ICD_FILES=${NVIDIA_ICD_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.x86_64.json}
NVIDIA_EGL_FILES=${NVIDIA_EGL_FILES:-/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json /usr/share/glvnd/egl_vendor.d/10_nvidia.json}

dry=0
size=--full
dtype=fp16
layers=
for a in "$@"; do
  case "$a" in
    --dry-run) dry=1 ;;
    --layers=*) layers=${a#--layers=} ;;
    --dtype=*) dtype=${a#--dtype=} ;;
    --help|-h) sed -n '2,20p' "$0"; exit 0 ;;
  esac
done
if [ -n "$layers" ]; then
  case "$layers" in ''|*[!0-9]*) echo "gpu-runtime: --layers must be a number of layers (1..24), got '$layers'" >&2; exit 2 ;; esac
  if [ "$layers" -lt 1 ] || [ "$layers" -gt 24 ]; then echo "gpu-runtime: --layers must be 1..24, got $layers" >&2; exit 2; fi
  size="--layers=$layers"
fi
case "$dtype" in fp16|fp32|int4) ;; *) echo "gpu-runtime: --dtype must be fp16, fp32 or int4, got '$dtype'" >&2; exit 2 ;; esac
case "$BUDGET_S" in ''|*[!0-9]*) echo "gpu-runtime: BUDGET_S must be a number of seconds" >&2; exit 2 ;; esac

# Runs a command, or only prints it in a dry run.
act() {
  if [ "$dry" = 1 ]; then echo "would run: $*"; else "$@"; fi
}

first_existing() {
  for f in $1; do [ -f "$f" ] && { echo "$f"; return 0; }; done
  return 1
}

# 1. the Vulkan loader
if ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
  echo "vulkan loader: present"
else
  debs=$(ls "$GL_DIR"/*.deb 2>/dev/null || true)
  if [ -z "$debs" ]; then
    echo "gpu-runtime: libvulkan.so.1 is not installed and $GL_DIR/ holds no loader packages; on a machine with apt run:" >&2
    echo "  mkdir -p $GL_DIR && (cd $GL_DIR && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)" >&2
    echo "  (docs/benchmarks.md §GPU for the amd64 options) and bring $GL_DIR/ along with the working tree" >&2
    exit 1
  fi
  echo "vulkan loader: absent; unpacking $(echo "$debs" | wc -l) package(s) from $GL_DIR into $GL_ROOT"
  for f in $debs; do act dpkg -x "$f" "$GL_ROOT"; done
  act ldconfig
fi

# 2. the driver manifest
have_icd=0
for d in $VK_ICD_DIRS; do
  if ls "$d"/*.json >/dev/null 2>&1; then have_icd=1; fi
done
if [ "$have_icd" = 0 ]; then
  if icd=$(first_existing "$NVIDIA_ICD_FILES"); then
    echo "vulkan driver: none in $VK_ICD_DIRS; using $icd"
    if [ "$dry" = 1 ]; then echo "would export: VK_DRIVER_FILES=$icd"; fi
    export VK_DRIVER_FILES="$icd"
    if egl=$(first_existing "$NVIDIA_EGL_FILES"); then
      if [ "$dry" = 1 ]; then echo "would export: __EGL_VENDOR_LIBRARY_FILENAMES=$egl"; fi
      export __EGL_VENDOR_LIBRARY_FILENAMES="$egl"
    fi
  else
    echo "gpu-runtime: no Vulkan driver manifest in $VK_ICD_DIRS and no NVIDIA one among: $NVIDIA_ICD_FILES" >&2
    echo "  (WebGPU would fall back to CPU; the bench refuses that)" >&2
    exit 1
  fi
else
  echo "vulkan driver: manifest found in $VK_ICD_DIRS"
fi

# 3. the GPU and the bench
gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1 || true)
echo "# GPU: ${gpu:-unknown (nvidia-smi not found)}"
# Our own options are consumed above; everything else goes to the bench.
extra=
for a in "$@"; do
  case "$a" in --dry-run|--layers=*|--dtype=*) ;; *) extra="$extra $a" ;; esac
done
# shellcheck disable=SC2086 # $extra holds separate words on purpose
act timeout "$BUDGET_S" node bin/volmo.js bench runtime --ep=webgpu "$size" --dtype="$dtype" --parts=vision,decode,exam \
  --steps=16 --reps=2 --baseline=none --skip-no-reuse --verbose $extra
