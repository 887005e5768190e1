# Sluice build. Every target works on a fresh machine with Go; `make proto`
# also needs protoc (installed by .ci/install or `apt-get install protobuf-compiler`).
GO        ?= go
BIN       := bin
PLUGINDIR := $(BIN)/plugins
PLUGINS   := $(notdir $(wildcard plugins/*))
MODULES   := ./core/... ./sdk/... ./sdk/examples/policy-example/... $(addsuffix /...,$(addprefix ./plugins/,$(PLUGINS)))
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
# Tests run the binaries the build just made.
export SLUICE_BIN_DIR := $(CURDIR)/$(BIN)

.PHONY: all build run test test-unit test-e2e test-kafka bench soak fuzz proto lint clean

all: build

build:
	@mkdir -p $(PLUGINDIR)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/sluice ./core/cmd/sluice
	@for p in $(PLUGINS); do \
		echo "$(GO) build -o $(PLUGINDIR)/sluice-plugin-$$p ./plugins/$$p"; \
		$(GO) build -ldflags '$(LDFLAGS)' -o $(PLUGINDIR)/sluice-plugin-$$p ./plugins/$$p || exit 1; \
	done

run: build
	$(BIN)/sluice run gateway.hcl

test: build test-unit test-e2e

test-unit:
	$(GO) test -count=1 $(MODULES)

test-e2e: build
	$(GO) test -count=1 -timeout 8m ./e2e/...

test-kafka: build
	./scripts/kafka/run-tests.sh

bench: build
	$(GO) run ./bench/cmd/bench -results bench/results -label '$(VERSION)' $(BENCH_FLAGS)

# `make soak DURATION=10m`: mixed traffic against the embedded broker on
# loopback; fails when RSS, goroutines, descriptors or consumer lag trend
# upward after warm-up. Writes docs/soak/soak.csv and soak.png.
DURATION ?= 10m
soak: build
	$(GO) run ./bench/cmd/soak -duration $(DURATION) -out docs/soak $(SOAK_FLAGS)

# Every fuzz target for FUZZTIME each (default 10s).
fuzz:
	./scripts/fuzz.sh

proto:
	./sdk/gen.sh

lint:
	$(GO) vet $(MODULES) ./e2e/... ./bench/...
	@out=$$(gofmt -l core sdk plugins e2e bench | grep -v '\.pb\.go$$'); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

clean:
	rm -rf $(BIN) .sluice
