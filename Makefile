# Weir — make targets. `make test` is what CI runs (.ci/run).
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/weir-edge/weir/internal/cli.Version=$(VERSION)

.PHONY: build demo test test-peers vet fuzz bench clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/weir ./cmd/weir

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

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)
	$(VETARCH) $(GO) vet ./...
	@if [ "$$($(GO) list -f '$(VETFILES)' ./...)" != "$$($(VETARCH) $(GO) list -f '$(VETFILES)' ./...)" ]; then \
		echo "files built for the host only: vetting the host too"; $(GO) vet ./...; fi

# Short fuzzing pass over every fuzz target (seed corpora always run in `make test`).
fuzz:
	./scripts/fuzz.sh 20s

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
