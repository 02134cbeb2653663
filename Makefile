# Weir — make targets. `make test` is what CI runs (.ci/run).
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
# The build date; SOURCE_DATE_EPOCH (reproducible builds) wins.
DATE    ?= $(shell date -u $${SOURCE_DATE_EPOCH:+-d @$$SOURCE_DATE_EPOCH} +%Y-%m-%dT%H:%M:%SZ)
CLI     := github.com/weir-edge/weir/cmd/weir/cli
LDFLAGS := -s -w -X $(CLI).Version=$(VERSION) -X $(CLI).Commit=$(COMMIT) -X $(CLI).Date=$(DATE)
# Platforms for `make release`: os/arch, or linux/arm for ARMv7.
PLATFORMS ?= $(shell $(GO) env GOOS)/$(shell $(GO) env GOARCH)

.PHONY: build release install-check demo test test-peers vet fuzz bench clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/weir ./cmd/weir

# Static binaries (no cgo), stamped with version, commit and date (weir
# version prints them), into dist/weir-VERSION-OS-ARCH, each with its
# CycloneDX SBOM beside it (.cdx.json, written by a host weir stamped
# alike: -trimpath keeps -ldflags out of the build info); e.g.
#   make release PLATFORMS="linux/amd64 linux/arm64 linux/arm"
release:
	@mkdir -p dist
	@set -e; for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; out=dist/weir-$(VERSION)-$$os-$$arch; \
		echo "build $$out"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch GOARM=7 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$out ./cmd/weir; \
		$(GO) run -trimpath -ldflags '$(LDFLAGS)' ./cmd/weir version -sbom $$out > $$out.cdx.json; \
	done

# Proves `go install github.com/weir-edge/weir/cmd/weir@VERSION` works:
# the committed tree served as a module version from a local file://
# proxy, installed into a clean GOPATH (slow: builds everything; not part
# of make test).
install-check:
	./scripts/install-check.sh

# The built-in demo plant: simulator + gateway + embedded MQTT broker.
demo: build
	./bin/weir run

# Installs the third-party peers the tests talk to when missing, checks the
# local services, then runs every test with the race detector.
test: test-peers vet
	WEIR_REQUIRE_PEERS=$${WEIR_REQUIRE_PEERS:-1} $(GO) test -race -count=1 -timeout 15m ./...

test-peers:
	./scripts/test-peers.sh

# One vet pass, for 32-bit ARM: such gateways exist, so constants and ints
# must fit there too, and every analyzer runs on the way. No file is built
# for one architecture only, so that pass sees every file a host pass would;
# should one appear, the `go list` comparison (under a second) adds the host
# pass. The go command caches vet results: unchanged packages cost nothing
# on the next run. Measured figures: README, "The two commands".
VETARCH := GOARCH=arm GOARM=7
VETFILES := {{.ImportPath}} {{.GoFiles}} {{.CgoFiles}} {{.TestGoFiles}} {{.XTestGoFiles}}
VETPKGS = ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)
	$(VETARCH) $(GO) vet $(VETPKGS)
	@if [ "$$($(GO) list -f '$(VETFILES)' ./...)" != "$$($(VETARCH) $(GO) list -f '$(VETFILES)' ./...)" ]; then \
		echo "files built for the host only: vetting the host too"; $(GO) vet $(VETPKGS); fi

# Short fuzzing pass over every fuzz target (seed corpora always run in `make test`),
# each under GOMEMLIMIT and a hard address-space cap: a crash, an out-of-memory or a
# hang fails it (scripts/fuzz.sh says how).
fuzz:
	./scripts/fuzz.sh 20s

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin dist
