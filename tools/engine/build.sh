#!/bin/sh
# Build the Pulumi CLI from its Go modules into .engine/bin (ignored by git).
# Release binaries cannot be downloaded on our machines; the Go module proxy can be reached.
# Idempotent: a stamped binary of the wanted version is reused; Go's caches make rebuilds fast.
set -eu

ENGINE_VERSION="${PULUMI_ENGINE_VERSION:-v3.274.0}"
ROOT=$(CDPATH= cd -- "$(dirname -- "$0")/../.." && pwd)
OUT="$ROOT/.engine"
BIN="$OUT/bin"
STAMP="$OUT/version"

if [ -x "$BIN/pulumi" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$ENGINE_VERSION" ]; then
    echo "engine: pulumi $ENGINE_VERSION already built in $BIN"
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

# Python dynamic providers run as the plugin pulumi-resource-pulumi-python: a script shipped in
# the SDK module, looked up beside the CLI.
SDK_DIR=$(GOFLAGS=-mod=mod go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
for f in pulumi-resource-pulumi-python pulumi-language-python-exec pulumi-analyzer-policy-python; do
    src=$(find "$SDK_DIR/python" -maxdepth 3 -name "$f" -type f | head -n 1)
    if [ -n "$src" ]; then
        cp "$src" "$BIN/$f" && chmod 0755 "$BIN/$f"
    fi
done
echo "$ENGINE_VERSION" > "$STAMP"
"$BIN/pulumi" version
