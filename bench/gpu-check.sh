#!/usr/bin/env bash
# GPU check for an NVIDIA machine without Node.js and without registry access.
#
#   bash bench/gpu-check.sh pack   # here: build, then bundle Node.js, dist/, the golden cases, the
#                                  # runtime node_modules (Dawn for linux-x64 only) and the Vulkan
#                                  # loader into dist/gpu-check/bundle.tar.xz (must stay < 64 MiB)
#   bash bench/gpu-check.sh        # there (one command): unpack, find the NVIDIA Vulkan driver,
#                                  # then JSON lines (bench/gpu-check.ts): the adapter, the golden
#                                  # suite on the gpujs backend (f32), matmul GFLOP/s at 1024³–4096³
#                                  # (CPU, gpu.js kernel, WGSL shader), Mega layer tokens/s against
#                                  # the CPU, a training step of mega_lra_imdb size (gpujs and CPU)
#                                  # with its transfers per step, and a summary. Budget < 8 min.
#
# dist/ is git-ignored: hand dist/gpu-check to the machine with the working tree (the device
# tool's `carry: ["dist/gpu-check"]`). Options through the environment: MEGA_GPU=<adapter index>,
# MEGA_BENCH_MATMUL_SIZES (default here 1024,2048,4096), MEGA_EXPECT_GPU_MODE (default webgpu),
# MEGA_EXPECT_HARDWARE (default 1: a software adapter such as lavapipe fails the check),
# MEGA_CHECK_TRAIN_B / MEGA_CHECK_TRAIN_L (default 2 × 4000), MEGA_CHECK_CPU_TRAIN (default 1),
# MEGA_CHECK_SKIP=golden,matmul,layer,train (sections to leave out).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUNDLE=dist/gpu-check/bundle.tar.xz

pack() {
  npm run build >/dev/null
  local stage
  stage=$(mktemp -d)
  mkdir -p "$stage/m/bin" "$stage/m/lib" "$stage/m/test" "$stage/m/node_modules/webgpu/dist"
  cp "$(readlink -f "$(command -v node)")" "$stage/m/bin/node"
  cp -r dist "$stage/m/dist" && rm -rf "$stage/m/dist/gpu-check"
  cp package.json "$stage/m/"
  mkdir -p "$stage/m/test/golden" && cp test/golden/*.msgpack "$stage/m/test/golden/"
  for p in gpu.js acorn gpu-mock.js fft.js msgpackr; do cp -r "node_modules/$p" "$stage/m/node_modules/$p"; done
  rm -rf "$stage/m/node_modules/gpu.js/dist"
  cp node_modules/webgpu/package.json node_modules/webgpu/index.js "$stage/m/node_modules/webgpu/"
  cp -r node_modules/webgpu/dist/linux-x64 "$stage/m/node_modules/webgpu/dist/"
  cp -L /usr/lib/x86_64-linux-gnu/libvulkan.so.1 "$stage/m/lib/"
  cp bench/gpu-check.sh "$stage/m/"
  mkdir -p dist/gpu-check
  tar -C "$stage" -cJf "$BUNDLE" m
  rm -rf "$stage"
  local size
  size=$(stat -c %s "$BUNDLE")
  echo "bundle: $BUNDLE, $((size / 1024 / 1024)) MiB"
  if [ "$size" -ge $((64 * 1024 * 1024)) ]; then echo "bundle is over 64 MiB" >&2; exit 1; fi
}

run() {
  local app node
  if [ -f "$BUNDLE" ]; then
    app=$(mktemp -d)/m
    tar -C "$(dirname "$app")" -xJf "$BUNDLE"
    node="$app/bin/node"
    export LD_LIBRARY_PATH="$app/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  elif command -v node >/dev/null && [ -f dist/bench/gpu-check.js ]; then
    app=$ROOT
    node=$(command -v node)
  else
    echo "no bundle ($BUNDLE) and no built tree with node: run 'bash bench/gpu-check.sh pack' first" >&2
    exit 2
  fi
  # The NVIDIA Vulkan driver: its ICD file, or one written for libGLX_nvidia.so.0 (where the
  # driver keeps its Vulkan entry points) when the container did not get one.
  if command -v nvidia-smi >/dev/null; then nvidia-smi -L >&2 || true; fi # stdout carries only the JSON lines
  if [ -z "${VK_ICD_FILENAMES:-}" ] && ! ls /usr/share/vulkan/icd.d/nvidia*.json /etc/vulkan/icd.d/nvidia*.json >/dev/null 2>&1; then
    local glx
    glx=$( (ldconfig -p 2>/dev/null | awk '/libGLX_nvidia\.so\.0/ {print $NF; exit}') || true)
    [ -z "$glx" ] && glx=$(ls /usr/lib/x86_64-linux-gnu/libGLX_nvidia.so.0 /usr/lib64/libGLX_nvidia.so.0 2>/dev/null | head -1 || true)
    if [ -n "$glx" ]; then
      local icd
      icd=$(mktemp --suffix=.json)
      printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s","api_version":"1.3.0"}}\n' "$glx" >"$icd"
      export VK_ICD_FILENAMES=$icd
      echo "no NVIDIA Vulkan ICD file installed; using $glx" >&2
    else
      echo "warning: no NVIDIA Vulkan driver found (no ICD file, no libGLX_nvidia.so.0); in a container the driver capabilities must include 'graphics'" >&2
    fi
  fi
  cd "$app"
  # the whole check stays within its 8-minute budget (set-up included): the run gets 7 minutes
  local rc=0
  MEGA_EXPECT_GPU_MODE=${MEGA_EXPECT_GPU_MODE:-webgpu} MEGA_EXPECT_HARDWARE=${MEGA_EXPECT_HARDWARE:-1} MEGA_BENCH_MATMUL_SIZES=${MEGA_BENCH_MATMUL_SIZES:-1024,2048,4096} \
    timeout "${MEGA_CHECK_TIMEOUT:-420}" "$node" --expose-gc dist/bench/gpu-check.js || rc=$?
  if [ "$rc" = 124 ]; then echo '{"check":"budget","pass":false,"reason":"the check ran past its time limit"}'; fi
  return "$rc"
}

case "${1:-run}" in
  pack) pack ;;
  run) run ;;
  *) echo "usage: bash bench/gpu-check.sh [pack|run]" >&2; exit 2 ;;
esac
