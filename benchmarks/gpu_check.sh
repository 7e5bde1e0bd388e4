#!/usr/bin/env bash
# Every GPU check of the project in one run and one report (issue #22, point 6), under 8 minutes of
# device time: calibrate, the latency-model validation, profile_cuda.py, `senet inspect` under
# torchrun on nccl with 1 GPU, and the CUDA tests. Run from the repository root whenever a GPU is
# available:
#
#     bash benchmarks/gpu_check.sh [REPORT_DIR]      # default: $OUT if set, else gpu_check_<date>/
#
# Writes REPORT_DIR/report.md (every step's command, exit status, seconds and output) beside the
# files the steps write (cuda.json: the calibration; latency.json; profile_cuda.json). Each step has
# its own time limit (seconds below, 465 s in all); a step that fails or runs out is reported and
# the next one runs. Without a GPU it says so and exits 0. Copy the figures into
# benchmarks/RESULTS.md with the GPU's name.
set -u
cd "$(dirname "$0")/.." || exit 1
REPORT_DIR="${1:-${OUT:-gpu_check_$(date -u +%Y%m%d_%H%M)}}"
PYTHON="${PYTHON:-python}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check: no CUDA GPU visible to torch here; nothing run. Run this script on a machine with a GPU."
    exit 0
fi
mkdir -p "$REPORT_DIR"
REPORT="$REPORT_DIR/report.md"
START=$(date +%s)
{
    echo "# GPU check, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo '```'
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || true
    "$PYTHON" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'cuDNN', torch.backends.cudnn.version(), torch.cuda.get_device_name())"
    uptime
    echo '```'
} > "$REPORT"

step() {  # step NAME LIMIT_SECONDS COMMAND...
    local name="$1" limit="$2"
    shift 2
    local began=$(date +%s)
    echo "gpu_check: $name (at most ${limit} s)"
    {
        echo
        echo "## $name"
        echo
        echo "\`$*\`"
        echo
        echo '```'
    } >> "$REPORT"
    timeout "$limit" "$@" >> "$REPORT" 2>&1
    local code=$?
    {
        echo '```'
        echo
        echo "exit $code$( [ "$code" = 124 ] && echo ' (ran out of time)'), $(( $(date +%s) - began )) s"
    } >> "$REPORT"
}

step "calibrate" 75 "$PYTHON" -m senet_cli calibrate --device cuda --budget 40 --output "$REPORT_DIR/cuda.json" --force
step "latency model vs measured (fp32, batch 1 and 64)" 120 \
    "$PYTHON" benchmarks/latency_model.py --device cuda --batches 1,64 --iters 20 --warmup 5 \
    --calibration "$REPORT_DIR/cuda.json" --json "$REPORT_DIR/latency.json"
step "profile_cuda.py (senet and timm, fp32/amp/amp+cl)" 150 \
    "$PYTHON" benchmarks/profile_cuda.py --repeats 1 --batches 1,64 --iters 50,30 --output "$REPORT_DIR/profile_cuda.json"
step "inspect under torchrun, nccl, 1 GPU" 60 bash -c '
    set -e
    DIR=$(mktemp -d)
    "$0" -c "
import sys, torch
from senet_cli import build_model, save_checkpoint
torch.manual_seed(0)
save_checkpoint(build_model(\"se_resnet18_cifar\"), sys.argv[1] + \"/se.pth\")
" "$DIR"
    "$0" -m torch.distributed.run --nnodes 1 --nproc-per-node 1 --master-addr 127.0.0.1 --master-port 29531 \
        -m senet_cli inspect "$DIR/se.pth" --data synthetic --limit 64 --batch 16 --device cuda --format json \
        --output "$DIR/gates.json"
    "$0" -c "
import json, sys
report = json.load(open(sys.argv[1]))
print(\"distributed:\", report.get(\"distributed\"))
assert report[\"distributed\"][\"backend\"] == \"nccl\", report.get(\"distributed\")
" "$DIR/gates.json"' "$PYTHON"
step "CUDA tests" 60 "$PYTHON" -m pytest -q -x tests/test_profile.py tests/test_latency.py -k cuda -p no:cacheprovider

{
    echo
    echo "total $(( $(date +%s) - START )) s; $(uptime)"
} >> "$REPORT"
echo "gpu_check: wrote $REPORT"
