#!/usr/bin/env bash
# Create .venv in the checkout and install the pinned, hashed dependencies plus the package itself.
# Plain pip only, so PIP_INDEX_URL / PIP_TRUSTED_HOST (internal mirrors) are honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "weltklassebot needs Python 3.11 or newer; '$PYTHON' is $("$PYTHON" --version 2>&1)." >&2
    echo "Set PYTHON=/path/to/python3.11 and run again." >&2
    exit 2
fi
stamp=.venv/.weltklassebot-lock.sha256
want=$(sha256sum requirements.lock pyproject.toml | sha256sum | cut -c1-64)
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
echo "$want" > "$stamp"
