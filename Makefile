# Sluice build. `make build`, `make run` and `make test` need only Go. The
# targets that need more refuse to start without it and print the install
# command (./.ci/install installs everything on Debian):
#   make test-tools  kcat and Chromium (tests built with -tags tools)
#   make test-kafka  Java 17, Maven, openssl (a real Apache Kafka)
#   make proto       protoc
# `make build` also builds the Python example policy into bin/python-plugins
# when Python 3 has the packages of sdk/examples/python-policy/requirements.txt
# (it says so and goes on without it otherwise); `make python-plugin` insists.
# `make test-all` runs all three test targets; CI (.ci/run) runs it.
GO        ?= go
BIN       := bin
PLUGINDIR := $(BIN)/plugins
# Not in PLUGINDIR: every test gateway would start a Python process.
PYPLUGIN  := $(BIN)/python-plugins/sluice-plugin-policy-python-uppercase
PYTHON    ?= python3
PLUGINS   := $(notdir $(wildcard plugins/*))
MODULES   := ./core/... ./sdk/... ./sdk/examples/policy-example/... ./examples/... $(addsuffix /...,$(addprefix ./plugins/,$(PLUGINS)))
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
# Tests run the binaries the build just made.
export SLUICE_BIN_DIR := $(CURDIR)/$(BIN)

.PHONY: all build python-plugin run test test-unit test-e2e test-tools test-kafka test-all bench soak fuzz proto lint clean

all: build

build:
	@mkdir -p $(PLUGINDIR)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/sluice ./core/cmd/sluice
	@for p in $(PLUGINS); do \
		echo "$(GO) build -o $(PLUGINDIR)/sluice-plugin-$$p ./plugins/$$p"; \
		$(GO) build -ldflags '$(LDFLAGS)' -o $(PLUGINDIR)/sluice-plugin-$$p ./plugins/$$p || exit 1; \
	done
	@# Exit 3: Python 3 or a package is missing; build.sh printed what to install.
	@PYTHON=$(PYTHON) ./sdk/examples/python-policy/build.sh $(PYPLUGIN) || [ $$? -eq 3 ]

python-plugin:
	PYTHON=$(PYTHON) ./sdk/examples/python-policy/build.sh $(PYPLUGIN)

run: build
	$(BIN)/sluice run gateway.hcl

test: build test-unit test-e2e

test-unit:
	$(GO) test -count=1 $(MODULES)

test-e2e: build
	@# go test prints skip reasons only with -v: say it here too.
	@$(PYTHON) -c 'import grpc, grpc_tools, cryptography' 2>/dev/null || echo "NOTE: TestPythonPolicyTransformsProducedRecord will skip: pip install -r sdk/examples/python-policy/requirements.txt" >&2
	$(GO) test -count=1 -timeout 12m ./e2e/...

# The e2e tests that need a tool besides Go are built with -tags tools and
# named after their tool; TOOLS_TESTS selects them so the rest of the suite,
# which `make test` already ran, does not run twice.
TOOLS_TESTS := Kcat|Browser

test-tools: build
	@command -v kcat >/dev/null 2>&1 || { echo "make test-tools needs kcat: sudo apt-get install kcat (or ./.ci/install)" >&2; exit 1; }
	@[ -n "$$SLUICE_CHROMIUM" ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		command -v google-chrome >/dev/null 2>&1 || { echo "make test-tools needs Chromium: sudo apt-get install chromium (or ./.ci/install, or set SLUICE_CHROMIUM)" >&2; exit 1; }
	$(GO) test -count=1 -timeout 8m -tags tools -run '$(TOOLS_TESTS)' ./e2e/...

test-kafka: build
	@for t in java keytool mvn openssl; do command -v $$t >/dev/null 2>&1 || \
		{ echo "make test-kafka needs $$t: sudo apt-get install openjdk-17-jre-headless maven openssl (or ./.ci/install)" >&2; exit 1; }; done
	./scripts/kafka/run-tests.sh

# Everything: the Go-only suite, then the tests that need tools and a real
# Apache Kafka.
test-all: test test-tools test-kafka

bench: build
	$(GO) run ./bench/cmd/bench -results bench/results -label '$(VERSION)' $(BENCH_FLAGS)

# `make soak DURATION=10m`: mixed traffic (and webhook push subscriptions to
# a receiver in the soak) against a broker on loopback; fails when RSS,
# goroutines, descriptors or consumer lag trend upward after warm-up, or a
# webhook misses a record. Writes docs/soak/soak.csv and soak.png (another
# directory: SOAK_FLAGS="-out DIR"; other binaries: SOAK_FLAGS="-bin DIR").
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
	$(GO) vet -tags tools ./e2e/...
	@out=$$(gofmt -l core sdk plugins e2e bench examples | grep -v '\.pb\.go$$'); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

clean:
	rm -rf $(BIN) .sluice
