#!/usr/bin/env bash
# Set up (first run only) and train on the default data; extra arguments go to lstm-train, and its paths (--csv,
# --config, --out: default runs/latest) are taken from where this script is run, as lstm-train's own are.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
exec "$root/.venv/bin/lstm-train" "$@"
