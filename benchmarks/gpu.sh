#!/usr/bin/env bash
# The GPU checks in one run, for a machine with CUDA (the device tool's `run`, or any GPU box):
# the CUDA tests (CI has no GPU, so they skip there), then forward latency, our optimised models
# against the references, and the memory estimate against cudaMalloc's peak. Logs go to $OUT
# (or ./gpu-logs). Needs torch, torchvision, timm, pillow, safetensors, pytest, hypothesis;
# streamlit is not needed.
#     bash benchmarks/gpu.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-logs}
mkdir -p "$out"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 XDG_CACHE_HOME=${XDG_CACHE_HOME:-/tmp/ie-cache}
py=${PYTHON:-python3}
nvidia-smi -L
$py -c "import torch, torchvision, timm; print('torch', torch.__version__, 'torchvision', \
torchvision.__version__, 'timm', timm.__version__, torch.cuda.get_device_name())"
# -k: the Predict page's test needs streamlit, which a GPU image may lack (CI runs it)
timeout 200 $py -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_fast.py \
    -k "not page" 2>&1 | tee "$out/tests.log"
timeout 150 $py benchmarks/inference.py --device cuda --repeat 20 2>&1 | tee "$out/inference.log"
timeout 90 $py benchmarks/latency.py --device cuda 2>&1 | tee "$out/latency.log"
timeout 150 $py benchmarks/memory.py --device cuda --cases all --markdown 2>&1 | tee "$out/memory.log"
