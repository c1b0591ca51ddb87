#!/bin/sh
# Build the Pulumi CLI from its Go modules into .engine/bin (ignored by git).
# Release binaries cannot be downloaded on our machines; the Go module proxy can be reached.
# Idempotent: a stamped binary of the wanted version is reused; Go's caches make rebuilds fast.
set -eu

ENGINE_VERSION="${PULUMI_ENGINE_VERSION:-v3.274.0}"
ROOT=$(CDPATH='' cd -- "$(dirname -- "$0")/../.." && pwd)
OUT="$ROOT/.engine"
BIN="$OUT/bin"
STAMP="$OUT/version"

# Python dynamic providers run as the plugin pulumi-resource-pulumi-python, looked up beside the
# CLI. The SDK module ships it as a script that runs `python3 -m pulumi.dynamic` unless
# PULUMI_PYTHON_CMD or PULUMI_RUNTIME_VIRTUALENV says otherwise; the system python3 has no pulumi
# package, so a wrapper defaults to this project's .venv and then runs the SDK's script unchanged.
install_python_helpers() {
    sdk_dir=$(cd "$OUT/mod" && GOFLAGS=-mod=mod go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
    mkdir -p "$OUT/libexec"
    src=$(find "$sdk_dir/python" -maxdepth 3 -name pulumi-resource-pulumi-python -type f | head -n 1)
    [ -n "$src" ] || { echo "engine: pulumi-resource-pulumi-python not found in $sdk_dir" >&2; return 1; }
    cp "$src" "$OUT/libexec/pulumi-resource-pulumi-python"
    chmod 0755 "$OUT/libexec/pulumi-resource-pulumi-python"
    cat > "$BIN/pulumi-resource-pulumi-python.tmp" <<'WRAPPER'
#!/bin/sh
# Written by tools/engine/build.sh: run Python dynamic providers with the project's virtualenv
# (which has the pulumi package) unless the caller chose a Python, then the SDK's own script.
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
venv_python="$here/../../.venv/bin/python"
if [ -z "${PULUMI_PYTHON_CMD:-}" ] && [ -z "${PULUMI_RUNTIME_VIRTUALENV:-}" ] && [ -x "$venv_python" ]; then
    PULUMI_PYTHON_CMD="$venv_python"
    export PULUMI_PYTHON_CMD
fi
exec "$here/../libexec/pulumi-resource-pulumi-python" "$@"
WRAPPER
    chmod 0755 "$BIN/pulumi-resource-pulumi-python.tmp"
    mv "$BIN/pulumi-resource-pulumi-python.tmp" "$BIN/pulumi-resource-pulumi-python"
}

if [ -x "$BIN/pulumi" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$ENGINE_VERSION" ]; then
    echo "engine: pulumi $ENGINE_VERSION already built in $BIN"
    if command -v go >/dev/null 2>&1 && [ -f "$OUT/mod/go.mod" ]; then
        install_python_helpers
    fi
    exit 0
fi
if ! command -v go >/dev/null 2>&1; then
    echo "engine: no 'go' on PATH and no pulumi CLI: install Pulumi (https://www.pulumi.com/docs/install/)" >&2
    echo "engine: or install Go and rerun this script; engine tests will be skipped outside CI" >&2
    exit 3
fi

mkdir -p "$BIN" "$OUT/mod"
MOD="$OUT/mod"
# go install refuses modules whose go.mod has replace lines, so build from a module of our own
# that requires the CLI's module.
cat > "$MOD/go.mod" <<GOMOD
module raxx.local/pulumi-engine

go 1.24
GOMOD
cat > "$MOD/tools.go" <<'GOSRC'
//go:build tools

package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
GOSRC

cd "$MOD"
echo "engine: resolving github.com/pulumi/pulumi/pkg/v3@$ENGINE_VERSION (Go module proxy)"
GOFLAGS=-mod=mod go get "github.com/pulumi/pulumi/pkg/v3@$ENGINE_VERSION"
GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true
echo "engine: compiling the pulumi CLI (a cold build takes several minutes on 2 cores)"
# Without the version stamp the CLI reports an empty version and the Automation API rejects it.
GOFLAGS=-mod=mod go build -v \
    -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$ENGINE_VERSION" \
    -o "$BIN/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi 2>&1 \
    | awk '{ n++ } n % 200 == 0 { printf "engine: compiled %d packages\n", n; fflush() }'
[ -x "$BIN/pulumi.tmp" ] || { echo "engine: build failed" >&2; exit 1; }
mv "$BIN/pulumi.tmp" "$BIN/pulumi"

install_python_helpers
echo "$ENGINE_VERSION" > "$STAMP"
"$BIN/pulumi" version
