#!/bin/sh
# Installs the node-opcua peer used by sources/opcua's interop tests
# (node >= 18 and npm must be on PATH). Uses the committed lock file.
set -eu
cd "$(dirname "$0")"
if [ -f package-lock.json ]; then
	npm ci --no-audit --no-fund
else
	npm install --no-audit --no-fund
fi
