#!/usr/bin/env bash
# The long configurations (full-length parity runs, several seeds): about 10-20 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -m "slow and not gpu" "$@"
