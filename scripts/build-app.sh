#!/usr/bin/env bash
# The example app built once per version into DIST/VERSION/app (main.version
# set), the layout playbooks/examples/*.yml read with -e dist=DIST: for the
# demo and the benchmarks. Run from the repository's root.
# Usage: scripts/build-app.sh DIST VERSION...
set -euo pipefail
dist=$1
shift
for v in "$@"; do
	mkdir -p "$dist/$v"
	CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=$v" -o "$dist/$v/app" ./playbooks/examples/app
done
