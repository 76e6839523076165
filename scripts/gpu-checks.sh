#!/usr/bin/env bash
# Everything this project checks on a CUDA GPU, in one go: the cuDNN path's diagnosis
# (parity_tests/cudnn_diagnosis.py, into OUT_DIR/cudnn-diagnosis.txt), the parity suite's GPU variants and reports
# (parity_tests/run_gpu.sh: the scan path and JAX's cuDNN path against torch's cuDNN, TF32 off), then the
# benchmark grid with the cuDNN rows and the default job end to end (lstm-bench --device gpu).
#
# Usage: scripts/gpu-checks.sh [OUT_DIR]            (default runs/gpu; PYTHON overrides .venv/bin/python)
# Writes OUT_DIR/cudnn-diagnosis.txt, OUT_DIR/parity/ (see run_gpu.sh) and OUT_DIR/bench/ (results.json,
# results.md, results.png); commit them under parity_tests/results/gpu/ and benchmarks/results/gpu/.
# PARTS (default "diagnosis parity bench") picks the parts. On an H100 (session 8) they took about 1, 5 and 4
# minutes, the parity part about 6 with the cuDNN report added since: where one command may run 10 minutes, run
# PARTS="diagnosis parity" and PARTS=bench as two. Each part has its
# own time limit (DIAGNOSIS_TIMEOUT, PARITY_TIMEOUT, BENCH_TIMEOUT seconds), so that a lent machine's minutes
# are not spent on one part. torch-compile is left out on the GPU: Inductor compiles for minutes per shape,
# and on the CPU it leaves nn.LSTM to eager anyway (see README). Exit status: 0 when every part run passed
# (the diagnosis only reports), 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/gpu}"
parts=" ${PARTS:-diagnosis parity bench} "
export PYTHON="${PYTHON:-.venv/bin/python}"
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # torch and jax share the GPU in one process
mkdir -p "$out"

status=0
# Runs one part under its time limit; a part stopped there says so (timeout itself prints nothing).
run_part() {  # NAME LIMIT_S COMMAND...
    local name=$1 limit=$2
    shift 2
    timeout "$limit" "$@"
    local rc=$?
    if ((rc == 124)); then
        echo "gpu-checks.sh: the $name part ran past its limit of $limit s and was stopped" >&2
    fi
    return "$rc"
}
if [[ $parts == *" diagnosis "* ]]; then  # where the cuDNN path departs from the scan path
    run_part diagnosis "${DIAGNOSIS_TIMEOUT:-150}" "$PYTHON" -m parity_tests.cudnn_diagnosis 2>&1 |
        tee "$out/cudnn-diagnosis.txt"
fi
if [[ $parts == *" parity "* ]]; then
    run_part parity "${PARITY_TIMEOUT:-420}" bash parity_tests/run_gpu.sh "$out/parity" || status=1
fi
if [[ $parts == *" bench "* ]]; then
    # The rows and budget that fit a 15-minute lease (the other JAX rows add about 25 s a shape, mostly
    # compiling). results.json is rewritten after every row.
    impls=torch-eager,torch-cudnn,jax-epoch,jax-cudnn,flax-stock,jax-rnn-stock
    run_part bench "${BENCH_TIMEOUT:-330}" "$PYTHON" -m benchmarks.bench --device gpu --impls "$impls" \
        --budget 0.5 --end-to-end --out "$out/bench" || status=1
fi
exit "$status"
