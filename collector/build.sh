#!/usr/bin/env bash
# Build obskit's collector distribution (otelcol-obskit) from Go modules.
#   collector/build.sh [OUT_DIR]      (default: ./.ci-bin)
# Go's module cache (GOMODCACHE) and build cache (GOCACHE) are reused between runs, so a
# second build with nothing changed takes seconds. Nothing is built when the binary is
# newer than every source file here.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../.ci-bin}"
mkdir -p "$out"
bin="$out/otelcol-obskit"
release="$(sed -n 's/^const version = "\(.*\)"/\1/p' "$here/main.go")"
# Every collector module in go.mod must be at the one release main.go names.
if grep -E '^\s+(go\.opentelemetry\.io/collector/[a-z/]+|github\.com/open-telemetry/opentelemetry-collector-contrib/[a-z/]+) v0\.' "$here/go.mod" \
    | grep -v "v$release\b" | grep -v '// indirect' >&2; then
  echo "collector/go.mod: the modules above are not at release v$release" >&2
  exit 1
fi
if [ -x "$bin" ] && [ -z "$(find "$here" -newer "$bin" -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \))" ]; then
  echo "otelcol-obskit $release is up to date: $bin"
  exit 0
fi
cd "$here"
echo "building otelcol-obskit $release (first build downloads modules and takes several minutes)"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin.tmp" .
mv "$bin.tmp" "$bin"
"$bin" --version
