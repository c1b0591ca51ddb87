#!/bin/sh
# The test command: lint, type-check, then every test (program, guard, engine, SSH, MariaDB, HTTP).
set -eu
ROOT=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
cd "$ROOT"
[ -x .venv/bin/python ] || { echo "test: no .venv here: run 'sh tools/setup.sh' first" >&2; exit 2; }
PATH="$ROOT/.engine/bin:$ROOT/.venv/bin:$PATH"
export PATH
# The engine never phones home from the tests.
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
