#!/usr/bin/env bash
# Set up (first run only), lint, and run the test suite without the slow and GPU tests (those:
# scripts/test-slow.sh, and parity_tests/run_gpu.sh on a GPU machine). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -m "not slow and not gpu" "$@"
