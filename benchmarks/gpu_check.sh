#!/usr/bin/env bash
# The GPU checks in one prepared run: the tests marked `cuda` (tests/test_devices.py and the
# device cases of the other test files), the engine benchmark on the GPU up to B=4096 beside
# cuDNN's nn.LSTM, and `predict --device cuda` end to end beside the LSTM checkpoint.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]
#
# OUT_DIR (default: $OUT, else gpu-check/ in the checkout; a relative path is taken from the
# directory you run it in) receives environment.txt, tests.log, bench.txt, bench.json and
# predict.txt; each step has its own time limit, and a failed step does not stop the next (the
# exit status is the first failure's; Ctrl-C stops the run, exit 130). Needs torch with CUDA,
# numpy, networkx, pytest and hypothesis; no DGL, no nltk, no network. With cuda it stops at
# once (exit 2) where torch sees no CUDA device, so that the cuda tests cannot all skip unseen.
# predict end to end needs SST's train/dev/test.txt in $SST (default: ../shared/data/sst, else
# .gpu/sst in the checkout) and is skipped, saying so, without them.
#
# Settings: GPU_CHECK_DEVICE=cpu runs the same steps on the CPU (a dry run of this script: the
# cuda tests then skip); GPU_CHECK_BATCH_SIZES (default 1,25,256,1024,4096) the benchmark's
# batch sizes; PYTHON the interpreter (default: the checkout's .venv/bin/python if there is one,
# else python3).
#
# With the device tool (its machine has no ../shared): once, `mkdir -p .gpu && cp -r
# ../shared/data/sst .gpu/` (.gpu/ is ignored by git); then run `bash benchmarks/gpu_check.sh`
# with carry [".gpu"] and timeout_s 600 (the steps' limits add up to 540 s).
set -uo pipefail
caller=$PWD
root=$(cd "$(dirname "$0")/.." && pwd)
absolute() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$caller/$1" ;; esac; }

out=$(absolute "${1:-${OUT:-$root/gpu-check}}")
device=${GPU_CHECK_DEVICE:-cuda}
python=${PYTHON:-}
if [ -z "$python" ]; then
    if [ -x "$root/.venv/bin/python" ]; then python=$root/.venv/bin/python; else python=python3; fi
fi
if ! mkdir -p "$out" 2>/dev/null || [ ! -w "$out" ]; then
    echo "gpu_check: cannot write to the output folder $out" >&2
    exit 2
fi
cd "$root" || exit 2
export PYTHONUNBUFFERED=1 GPU_CHECK_DEVICE="$device"
# cuBLAS is deterministic only with this workspace setting (torch's reproducibility notes); the
# resume test runs under torch.use_deterministic_algorithms
export CUBLAS_WORKSPACE_CONFIG=${CUBLAS_WORKSPACE_CONFIG:-:4096:8}
status=0
running=
scratch=

stop() {  # Ctrl-C or kill: stop the running step (timeout passes the signal to its group)
    [ -n "$running" ] && kill -TERM "$running" 2>/dev/null && wait "$running" 2>/dev/null
    [ -n "$scratch" ] && rm -rf "$scratch"
    echo "gpu_check: interrupted, outputs so far in $out" >&2
    exit 130
}
trap stop INT TERM

step() {  # step NAME SECONDS COMMAND...: run with a limit, log to $out/NAME, remember a failure
    local name=$1 limit=$2 code
    shift 2
    echo "== $name: $*" | tee "$out/$name"
    timeout "$limit" "$@" >>"$out/$name" 2>&1 &
    running=$!
    tail -n +2 -f --pid="$running" "$out/$name" &
    local follower=$!
    wait "$running"
    code=$?
    running=
    wait "$follower" 2>/dev/null
    echo "== $name: exit $code" | tee -a "$out/$name"
    if [ "$code" -ne 0 ] && [ "$status" -eq 0 ]; then status=$code; fi
}

if [[ $device == cuda* ]] && ! "$python" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
    echo "gpu_check: GPU_CHECK_DEVICE=$device, but $python's torch sees no CUDA device" >&2
    exit 2
fi
step environment.txt 60 "$python" -c "
import os, platform, torch
from treelstm.engine import kernels
device = os.environ['GPU_CHECK_DEVICE']
print('python', platform.python_version(), 'torch', torch.__version__, 'cuda', torch.version.cuda)
print('device', device, torch.cuda.get_device_name(device) if device.startswith('cuda') else '')
print('C level steps (CPU):', kernels.status())
"
step tests.log 180 "$python" -m pytest -m cuda -q -rfEs -p no:cacheprovider \
    tests/test_devices.py tests/test_models.py tests/test_batch.py tests/test_parse.py
step bench.txt 150 "$python" -m treelstm bench --device "$device" --budget 5 --no-memory \
    --methods native,native-nocache,native-childsum,lstm \
    --batch-sizes "${GPU_CHECK_BATCH_SIZES:-1,25,256,1024,4096}" --json "$out/bench.json"

if [ -n "${SST:-}" ]; then sst=$(absolute "$SST"); else
    sst=$root/../shared/data/sst
    [ -f "$sst/test.txt" ] || sst=$root/.gpu/sst
fi
if [ -f "$sst/train.txt" ] && [ -f "$sst/dev.txt" ] && [ -f "$sst/test.txt" ]; then
    if ! scratch=$(mktemp -d); then
        echo "gpu_check: no temporary folder for the checkpoints" >&2
        exit 2
    fi
    # one epoch each (the weights do not change the speed), then predict on SST's train.txt
    step predict.txt 150 bash -c '"$1" benchmarks/predict_e2e.py --data "$2" --make-checkpoints "$3" &&
        "$1" benchmarks/predict_e2e.py "$3/treelstm/best.pt" "$3/lstm/best.pt" --data "$2" \
            --input "$2/train.txt" --repeats 3 --extra "--device $4 --batch-trees 1024"' \
        predict "$python" "$sst" "$scratch" "$device"
    rm -rf "$scratch"
    scratch=
else
    echo "predict end to end skipped: no SST train.txt, dev.txt and test.txt in $sst" \
        | tee "$out/predict.txt"
fi
echo "gpu_check: exit $status, outputs in $out"
exit "$status"
