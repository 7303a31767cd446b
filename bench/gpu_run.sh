#!/usr/bin/env bash
# Issue 14's GPU checks as one prepared command for the `device` tool (an H200 with torch 2.11 + CUDA, triton,
# transformers 5.17, huggingface_hub 1.33, peft, accelerate 1.15, safetensors; no diffusers, no gradio, no network).
#
# 1. Here, once, in the repository root (the wheel travels in an ignored folder named in `carry`):
#      bash bench/gpu_run.sh fetch
#    It downloads diffusers==0.42.1 (our pin; pure Python, ~6 MB) into .whl/ for Python 3.12. Nothing else is
#    needed there: the machine's transformers/huggingface_hub/peft satisfy diffusers' requirements, and the GPU
#    tests and bench/gpu_speed.py import nothing from gradio/fastapi (pipelines/ never does; checked here with
#    gradio and fastapi made unimportable: the tiny bench ran, images identical to raw diffusers). The repository
#    travels at ~3 MB, the wheel at 6 MB. Our pin is transformers 5.23.0 and the machine has 5.17: if env.txt or
#    a failure points there, also fetch transformers==5.23.0 (its requirements, regex>=2025.10.22 among them,
#    are to be checked against `pip show regex` there) into .whl/.
# 2. Then the device tool's run, with carry [".whl"] and timeout_s 600:
#      bash bench/gpu_run.sh
#    Stages have their own time limits (tests/gpu 150 s, SD1.5 bench 200 s, SDXL bench 230 s) so one slow stage
#    cannot eat the others; every log and the figures as JSON land in $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "fetch" ]]; then
    grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
    mkdir -p .whl
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl diffusers==0.42.1
    ls -la .whl
    exit 0
fi

OUT="${OUT:-/tmp/atelier-gpu-out}"
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "could not install the carried wheels (.whl/ in carry?)"; exit 1; }
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
export TORCHINDUCTOR_CACHE_DIR=/tmp/inductor-cache

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c "import torch, diffusers, transformers, huggingface_hub, triton; print('torch', torch.__version__, \
'cuda', torch.version.cuda, 'diffusers', diffusers.__version__, 'transformers', transformers.__version__, \
'hub', huggingface_hub.__version__, 'triton', triton.__version__)"
    which g++ gcc cc
} 2>&1 | tee "$OUT/env.txt"

echo "== tests/gpu"
timeout 150 python3 -m pytest tests/gpu -q -p no:cacheprovider -rA --durations=10 2>&1 \
    | tee "$OUT/tests_gpu.log" | tail -40

echo "== bench SD1.5 512²"
timeout 200 python3 bench/gpu_speed.py --arch sd15 --compile-mode reduce-overhead --json "$OUT/gpu_speed_sd15.json" \
    2>&1 | grep -v "Loading\|Writing" | tee "$OUT/gpu_speed_sd15.log"

echo "== bench SDXL 1024²"
timeout 230 python3 bench/gpu_speed.py --arch sdxl --compile-mode reduce-overhead --json "$OUT/gpu_speed_sdxl.json" \
    2>&1 | grep -v "Loading\|Writing" | tee "$OUT/gpu_speed_sdxl.log"
