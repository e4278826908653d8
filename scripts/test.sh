#!/usr/bin/env bash
# The whole suite: lint (ruff), types (mypy, strict), then every test (pytest).
# Sets up .venv first when needed, so it works from a fresh clone.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PYTHONHASHSEED="${PYTHONHASHSEED:-0}"
echo "== ruff"
.venv/bin/ruff check src tests benchmarks examples
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest "$@"
