#!/usr/bin/env bash
# The long configurations (full-length parity runs, zoo scenarios, healthy defaults over seeds): ~3 minutes on
# 2 idle cores. .ci/run runs them after scripts/test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -m "slow and not gpu" "$@"
