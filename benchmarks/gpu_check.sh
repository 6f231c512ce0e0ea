#!/usr/bin/env bash
# The GPU checks in one prepared run: the tests marked `cuda` (tests/test_devices.py and the
# device cases of the other test files), the engine benchmark on the GPU up to B=4096 beside
# cuDNN's nn.LSTM, and `predict --device cuda` end to end beside the LSTM checkpoint.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]
#
# OUT_DIR (default: $OUT, else gpu-check/) receives environment.txt, tests.log, bench.txt,
# bench.json and predict.txt; each step has its own time limit, and a failed step does not stop
# the next (the exit status is the first failure's). Needs torch with CUDA, numpy, networkx,
# pytest and hypothesis; no DGL, no nltk, no network. predict end to end needs SST's
# train/dev/test.txt in $SST (default ../shared/data/sst, else .gpu/sst) and is skipped, saying
# so, without them. GPU_CHECK_DEVICE=cpu runs the same steps on the CPU (a dry run of this
# script: the cuda tests then skip), GPU_CHECK_BATCH_SIZES (default 1,25,256,1024,4096) sets the
# benchmark's batch sizes, PYTHON the interpreter (default python3).
#
# With the device tool (its machine has no ../shared): once, `echo /.gpu/ >> .git/info/exclude;
# mkdir -p .gpu && cp -r ../shared/data/sst .gpu/`; then run `bash benchmarks/gpu_check.sh`
# with carry [".gpu"] and timeout_s 600 (the steps' limits add up to 540 s).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu-check}}
device=${GPU_CHECK_DEVICE:-cuda}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
status=0

step() {  # step NAME SECONDS COMMAND...: run with a limit, log to $out/NAME, remember a failure
    local name=$1 limit=$2
    shift 2
    echo "== $name: $*" | tee "$out/$name"
    timeout "$limit" "$@" 2>&1 | tee -a "$out/$name"
    local code=${PIPESTATUS[0]}
    echo "== $name: exit $code" | tee -a "$out/$name"
    if [ "$code" -ne 0 ] && [ "$status" -eq 0 ]; then status=$code; fi
}

step environment.txt 60 "$python" -c "
import platform, torch
from treelstm.engine import kernels
print('python', platform.python_version(), 'torch', torch.__version__, 'cuda', torch.version.cuda)
print('device', '$device', torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA')
print('C level steps (CPU):', kernels.status())
"
step tests.log 180 "$python" -m pytest -m cuda -q -rfEs -p no:cacheprovider \
    tests/test_devices.py tests/test_models.py tests/test_batch.py tests/test_parse.py
step bench.txt 150 "$python" -m treelstm bench --device "$device" --budget 5 --no-memory \
    --methods native,native-nocache,native-childsum,lstm --batch-sizes "${GPU_CHECK_BATCH_SIZES:-1,25,256,1024,4096}" \
    --json "$out/bench.json"

sst=${SST:-../shared/data/sst}
[ -f "$sst/test.txt" ] || sst=.gpu/sst
if [ -f "$sst/train.txt" ] && [ -f "$sst/dev.txt" ] && [ -f "$sst/test.txt" ]; then
    checkpoints=$(mktemp -d)
    step predict.txt 150 bash -c "
        '$python' benchmarks/predict_e2e.py --data '$sst' --make-checkpoints '$checkpoints' &&
        '$python' benchmarks/predict_e2e.py '$checkpoints/treelstm/best.pt' \
            '$checkpoints/lstm/best.pt' --data '$sst' --input '$sst/train.txt' --repeats 3 \
            --extra '--device $device --batch-trees 1024'"
    rm -rf "$checkpoints"
else
    echo "predict end to end skipped: no SST train/dev/test.txt in \$SST, ../shared/data/sst or .gpu/sst" \
        | tee "$out/predict.txt"
fi
echo "gpu_check: exit $status, outputs in $out"
exit "$status"
