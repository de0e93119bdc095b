# Ferry. A newcomer needs two targets: `make demo` and `make test`.
SHELL := /bin/bash
GO    ?= go
BIN   := bin
EXAMPLES_OUT := wasm-examples/build
GO_JOBS := incredible-squaring sha256 jsontransform counter fetcher nbody
WAT_SRC := $(wildcard wasm-examples/wat/*.wat)
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: all build examples wat demo test deps lint test-go test-wasmtime test-guest bench fuzz cross lambda clean help

all: build

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build bin/ferry
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ferry ./cmd/ferry

examples: ## build the Go example jobs to wasm-examples/build (needs only Go)
	@mkdir -p $(EXAMPLES_OUT)
	@cd wasm-examples/go && for j in $(GO_JOBS); do \
		echo "  wasm  $$j (reactor)"; \
		GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -buildmode=c-shared -o ../build/$$j.wasm ./$$j || exit 1; \
	done
	@echo "  wasm  incredible-squaring (command)"
	@cd wasm-examples/go && GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -o ../build/incredible-squaring-cmd.wasm ./incredible-squaring

wat: ## rebuild the committed WAT binaries (needs wabt's wat2wasm)
	@command -v wat2wasm >/dev/null || { echo "wat2wasm not found: apt-get install wabt"; exit 1; }
	@for f in $(WAT_SRC); do wat2wasm "$$f" -o "$${f%.wat}.wasm" || exit 1; done
	@echo "rebuilt $(words $(WAT_SRC)) WAT modules"

demo: build examples ## run Ferry's main job on embedded defaults and show what happened
	@bash wasm-examples/demo.sh $(BIN)/ferry $(EXAMPLES_OUT) wasm-examples/wat

# Debian packages the toolchain tests need: wabt (WAT), clang + lld +
# wasi-libc + compiler-rt (C), rustc + cargo + the wasm32 std (Rust; it links
# with lld too), binaryen (wasm-opt), redis-server (the Redis state store and
# the cross-host state tests).
DEB_PACKAGES := wabt binaryen clang lld wasi-libc libclang-rt-14-dev-wasm32 rustc cargo libstd-rust-dev-wasm32 redis-server
# nodejs and npm run the npm packages below. They are installed only when
# node or npm is not on PATH, whatever provides them (nodesource's nodejs
# bundles npm and conflicts with Debian's). dynalite wants node >= 20.
DEB_NODE := nodejs npm
# npm packages the tests need, pinned, installed into $(NPM_PREFIX):
# dynalite (a DynamoDB-compatible server for the DynamoDB state store) and
# workerd (Cloudflare's Workers runtime, for the Workers host; its binary
# comes in the platform package @cloudflare/workerd-<os>-<arch>, which
# runs even when npm skips the postinstall script).
# All are installed together when any is missing or at another version:
# npm removes what a later install into the prefix does not name.
NPM_PACKAGES := dynalite@4.0.0 workerd@1.20261117.1
NPM_PREFIX   := .cache/npm

deps: ## install what the tests need (idempotent; installs only what is missing)
	@command -v $(GO) >/dev/null || { echo "Go is required: https://go.dev/dl"; exit 1; }
	@$(GO) mod download
	@cd guest && $(GO) mod download
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done; \
		command -v node >/dev/null && command -v npm >/dev/null || echo $(DEB_NODE)); \
	if [ -n "$$missing" ]; then \
		echo "deps: installing Debian packages:" $$missing; \
		if ! command -v apt-get >/dev/null; then echo "deps: no apt-get; tests needing" $$missing "will skip"; \
		else SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
			export DEBIAN_FRONTEND=noninteractive; \
			$$SUDO apt-get install -y -q $$missing >/dev/null 2>&1 || \
			{ $$SUDO apt-get update -q >/dev/null 2>&1 && $$SUDO apt-get install -y -q $$missing >/dev/null; } || \
			echo "deps: could not install" $$missing "(offline?); tests needing them will skip"; \
		fi; \
	fi
	@missing=$$(for p in $(NPM_PACKAGES); do \
		grep -qs '"version": *"'"$${p##*@}"'"' $(NPM_PREFIX)/node_modules/$${p%@*}/package.json || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "deps: installing npm packages:" $$missing; \
		if ! command -v npm >/dev/null; then echo "deps: no npm; tests needing" $$missing "will skip"; \
		elif ! out=$$(npm install --prefix $(NPM_PREFIX) --no-save --no-audit --no-fund --no-update-notifier \
				--loglevel=error --fetch-retries=1 $(NPM_PACKAGES) 2>&1); then \
			echo "$$out" | tail -n 3; \
			echo "deps: could not install" $$missing "(offline?); tests needing them will skip"; \
		fi; \
	fi
	@echo "deps: ok ($$($(GO) version))"

lint: ## gofmt and go vet, every module, host and wasip1
	@fmt=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); \
		if [ -n "$$fmt" ]; then echo "gofmt needed: $$fmt"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags wasmtime ./runtime/... ./benchmarks/...
	cd guest && $(GO) vet ./... && GOOS=wasip1 GOARCH=wasm $(GO) vet ./...
	cd wasm-examples/go && GOOS=wasip1 GOARCH=wasm $(GO) vet ./...
	cd wasm-examples/blueprint/jobs/square-go && GOOS=wasip1 GOARCH=wasm $(GO) vet ./...

test-go:
	$(GO) test -race -count=1 -timeout 20m ./...

# The runtime's tests again on wasmtime (cgo): the engine's own tests and
# wasmrt's whole suite, which FERRY_TEST_ENGINE points at it.
test-wasmtime:
	FERRY_TEST_ENGINE=wasmtime $(GO) test -race -count=1 -timeout 10m -tags wasmtime ./runtime/engine ./runtime/wasmrt ./benchmarks/harness

test-guest:
	cd guest && $(GO) test -count=1 ./...

test: deps lint test-go test-wasmtime test-guest ## install deps, lint and run every test
	@echo "make test: all passed"

bench: build lambda ## measure every engine and host; regenerate benchmarks/RESULTS.md, plots/ and results/
	@bash benchmarks/run.sh

fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	$(GO) test -run=NONE -fuzz=FuzzParse -fuzztime=$${FUZZTIME:-30s} ./runtime/wasmbin
	$(GO) test -run=NONE -fuzz=FuzzDescribe -fuzztime=$${FUZZTIME:-30s} ./runtime/abi
	$(GO) test -run=NONE -fuzz=FuzzDecodeHTTPRequest -fuzztime=$${FUZZTIME:-30s} ./runtime/wasmrt
	$(GO) test -run=NONE -fuzz='FuzzInstrument$$' -fuzztime=$${FUZZTIME:-30s} ./runtime/wasmbin/instrument
	$(GO) test -run=NONE -fuzz=FuzzInstrumentBody -fuzztime=$${FUZZTIME:-30s} ./runtime/wasmbin/instrument
	$(GO) test -run=NONE -fuzz=FuzzCapMemory -fuzztime=$${FUZZTIME:-30s} ./runtime/wasmbin/instrument
	$(GO) test -run=NONE -fuzz=FuzzParse -fuzztime=$${FUZZTIME:-30s} ./compiler/blueprint
	$(GO) test -run=NONE -fuzz=FuzzParse -fuzztime=$${FUZZTIME:-30s} ./orchestrator/policy
	$(GO) test -run=NONE -fuzz=FuzzParseBytes -fuzztime=$${FUZZTIME:-30s} ./hosts/httphost
	$(GO) test -run=NONE -fuzz=FuzzParseConfig -fuzztime=$${FUZZTIME:-30s} ./hosts/httphost
	$(GO) test -run=NONE -fuzz=FuzzOpen -fuzztime=$${FUZZTIME:-30s} ./hosts/hostpkg
	$(GO) test -run=NONE -fuzz=FuzzParse -fuzztime=$${FUZZTIME:-30s} ./hosts/lambda/event
	$(GO) test -run=NONE -fuzz=FuzzParseReport -fuzztime=$${FUZZTIME:-30s} ./hosts/lambda

cross: ## build ferry for linux/arm64 (t4g.nano) into bin/linux-arm64
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/linux-arm64/ferry ./cmd/ferry
	@file $(BIN)/linux-arm64/ferry 2>/dev/null || ls -la $(BIN)/linux-arm64/ferry

lambda: ## build the Lambda bootstrap (provided.al2023) for arm64 and x86_64 into bin/ferry-lambda-linux-*
	@for a in arm64 amd64; do \
		echo "  go    ferry-lambda linux/$$a"; \
		GOOS=linux GOARCH=$$a CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ferry-lambda-linux-$$a ./cmd/ferry-lambda || exit 1; \
	done

clean: ## remove build outputs
	rm -rf $(BIN) $(EXAMPLES_OUT)
