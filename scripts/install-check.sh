#!/bin/sh
# Simulates `go install github.com/weir-edge/weir/cmd/weir@VERSION` for the
# committed tree (HEAD): the module is served from a local file:// proxy,
# dependencies from this machine's module cache, into a clean GOPATH.
# Nothing is published. Fails if go.mod grows a replace or exclude
# directive (go install pkg@version refuses them) or the install breaks.
set -eu
cd "$(dirname "$0")/.."
v=v0.0.0-installcheck
tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT
at="$tmp/proxy/github.com/weir-edge/weir/@v"
mkdir -p "$at"
git archive HEAD --format=zip --prefix="github.com/weir-edge/weir@$v/" -o "$at/$v.zip"
git show HEAD:go.mod > "$at/$v.mod"
printf '{"Version":"%s","Time":"%s"}\n' "$v" "$(git log -1 --format=%cI)" > "$at/$v.info"
echo "$v" > "$at/list"
cache=$(go env GOMODCACHE)/cache/download
(cd "$tmp" && env GOPATH="$tmp/gopath" GOMODCACHE="$tmp/gopath/pkg/mod" GOFLAGS= GOTOOLCHAIN=local \
	GOPROXY="file://$tmp/proxy,file://$cache" GOSUMDB=off \
	go install "github.com/weir-edge/weir/cmd/weir@$v")
out=$("$tmp/gopath/bin/weir" version)
echo "$out"
case "$out" in "weir $v "*) ;; *) echo "install-check: want version $v" >&2; exit 1 ;; esac
