#!/usr/bin/env bash
# Set up (first run only) and train on the default data; extra arguments go to lstm-train.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/lstm-train "$@"
