#!/usr/bin/env bash
# The parity suite on a CUDA GPU, with matmul precision pinned (JAX 'highest'; torch TF32 off for matmul and
# cuDNN), and two lstm-parity reports.
#
# Usage: parity_tests/run_gpu.sh [OUT_DIR]          (default OUT_DIR: runs/gpu-parity; PYTHON overrides .venv/bin/python)
# Needs torch built with CUDA and jax with its CUDA plugin in that Python.
# Writes OUT_DIR/pytest.log and OUT_DIR/junit.xml (pytest parity_tests --gpu: every GPU variant, slow ones
# included), and OUT_DIR/float64/, OUT_DIR/float32/ and OUT_DIR/float32-cudnn/ (parity.json, parity.png, both
# backends' records): the suite's long float64 run, and a default float32 training on JAX's scan path and on
# its cuDNN path.
# Exit status: 0 when everything passed, 1 when a test or a report failed, 3 when no CUDA GPU is visible.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/gpu-parity}"
python="${PYTHON:-.venv/bin/python}"
mkdir -p "$out"

if ! "$python" -c 'import sys; from parity_tests.engine import gpu_available; sys.exit(not gpu_available())'; then
    echo "run_gpu.sh: torch and jax see no CUDA GPU; nothing run" >&2
    exit 3
fi
"$python" -c 'import jax, torch; print("torch", torch.__version__, torch.cuda.get_device_name(0), "| jax", jax.__version__, jax.devices("gpu")[0])' | tee "$out/device.txt"

status=0
"$python" -m pytest parity_tests --gpu -p no:cacheprovider --junitxml="$out/junit.xml" 2>&1 | tee "$out/pytest.log" || status=1

# parity_tests/cases.py LONG_FLOAT64: 522 steps, clipping on 29 % of them, the plateau firing 7 times.
"$python" -m parity_tests.cli --device gpu --quiet --out "$out/float64" --dtype float64 \
    --epochs 18 --batch-size 16 --grad-flow-every 5 --hidden-size 17 --num-layers 2 --num-samples 700 \
    --clip-norm 0.3 --plateau-patience 1 --plateau-factor 0.5 --plateau-threshold 0.05 || status=1
# The default float32 training: step by step over the first 50 steps, final validation loss within 1 %; then the
# same with the JAX trainer's cuDNN path (--rnn cudnn), whose tests above only pass or fail.
"$python" -m parity_tests.cli --device gpu --quiet --out "$out/float32" || status=1
"$python" -m parity_tests.cli --device gpu --quiet --rnn cudnn --out "$out/float32-cudnn" || status=1
exit "$status"
