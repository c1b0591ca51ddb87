#!/bin/sh
# One-command set-up for a fresh machine: system packages (when root), the virtualenv, and the
# Pulumi engine (built from Go modules when no `pulumi` is on PATH). Safe to run again.
set -eu
ROOT=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
cd "$ROOT"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

say() { printf 'setup: %s\n' "$*"; }

# 1. Debian packages the tests drive for real: dash and shellcheck (user_data), OpenSSH,
#    MariaDB and sudo (the data check runs over real ssh, sudo and mysql to a real server).
DEBS="dash shellcheck openssh-server openssh-client mariadb-server mariadb-client sudo"
missing=""
for p in $DEBS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing Debian packages:$missing"
        apt-get update -qq
        # policy-rc.d keeps the package scripts from starting system services: tests start their own.
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    else
        say "missing Debian packages:$missing (install them with: sudo apt-get install$missing)"
    fi
fi

# 2. The virtualenv with pinned packages, and the project itself in editable mode.
if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $PYTHON"
    "$PYTHON" -m venv .venv
fi
say "installing Python packages (requirements.txt)"
# The editable install of the project needs a setuptools that builds wheels without the network.
.venv/bin/pip install -q --disable-pip-version-check "setuptools==84.2.1" "wheel==0.48.0"
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
.venv/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .

# 3. The Pulumi engine: use the one on PATH, else build it from Go modules (cached).
if command -v pulumi >/dev/null 2>&1 && [ ! -x .engine/bin/pulumi ]; then
    say "using pulumi on PATH: $(command -v pulumi) ($(pulumi version))"
else
    sh tools/engine/build.sh || say "engine not built: engine tests will fail under CI=true and skip elsewhere"
fi

# 4. actionlint lints the pull-request workflow; built from its Go module when Go is present.
if [ ! -x .engine/bin/actionlint ] && command -v go >/dev/null 2>&1; then
    say "building actionlint from its Go module"
    GOBIN="$ROOT/.engine/bin" go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.7 \
        || say "actionlint not built: the workflow lint test will fail under CI=true"
fi
say "done. Run the tests with: sh tools/test.sh"
