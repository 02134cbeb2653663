#!/bin/sh
# Installs the reference Sparkplug payload decoder (Eclipse Tahu's npm
# sparkplug-payload) used by sinks/sparkplug's TestReferenceDecoder.
# Called by scripts/test-peers.sh; needs node and npm.
set -eu
cd "$(dirname "$0")"
if [ -f package-lock.json ]; then
	npm ci --no-audit --no-fund
else
	npm install --no-audit --no-fund
fi
