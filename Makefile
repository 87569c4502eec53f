# Magnetar's entry points. `make run` starts a standalone server; `make test`
# runs every test (unit, fuzz seeds, integration over real processes).

GO       ?= go
BIN      := bin
GOBIN    := $(shell $(GO) env GOPATH)/bin
PROTOC   ?= protoc
STATICCHECK_VERSION  := v0.8.2
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GRPC_VERSION := v1.6.2
VERSITYGW_VERSION := v1.8.0
PROTO_GEN := protocol/native/nativepb metadata/catalog/catalogpb bookie/bookiepb metadata/metadatapb

export PATH := $(GOBIN):$(PATH)

.PHONY: all build run test chaos test-unit lint tools generate check-generated bench fuzz compat-kafka clean

all: build

build:
	$(GO) build -o $(BIN)/magnetar ./cmd/magnetar
	$(GO) build -o $(BIN)/magctl ./cmd/magctl

## run: start `magnetar standalone` on ./data (native :6650, admin/metrics :8080)
run: build
	$(BIN)/magnetar standalone

## test: every test with the race detector, including the integration tests
## in tests/ that start real magnetar processes; then, on its own (it needs
## the machine's cores to itself), the chaos test's fixed-seed run.
test:
	$(GO) test -race -count=1 -timeout 20m $$($(GO) list ./... | grep -v /tests/chaos)
	$(MAKE) chaos

## chaos: the chaos test (tests/chaos, see its doc.go): a cluster of real
## processes under a seeded schedule of faults for DURATION, then a check of
## every promise. SEED and DURATION choose the run: make chaos SEED=7 DURATION=10m.
## It needs root (iptables, tmpfs, other uids): run by sudo when not root.
SEED          ?= 1
DURATION      ?= 3m
CHAOS_TIMEOUT ?= 60m
CHAOS_RACE    ?= -race
SUDO          := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chaos: build
	$(GO) test -c $(CHAOS_RACE) -o $(BIN)/chaos.test ./tests/chaos
	cd tests/chaos && $(SUDO) env CHAOS_SEED=$(SEED) CHAOS_DURATION=$(DURATION) \
		CHAOS_MAGNETAR_BIN=$(abspath $(BIN)/magnetar) $(abspath $(BIN)/chaos.test) \
		-test.count=1 -test.v -test.timeout $(CHAOS_TIMEOUT)

## test-unit: the fast in-process tests only
test-unit:
	$(GO) test -race -count=1 -short ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	staticcheck ./...

## tools: the code generators and linters, and versitygw (the S3 server the
## tiered/ tests run), at pinned versions
tools:
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GRPC_VERSION)
	$(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

## generate: regenerate the protobuf code (needs protoc and `make tools`)
generate:
	$(PROTOC) -I protocol/native --go_out=protocol/native/nativepb --go_opt=paths=source_relative \
		--go-grpc_out=protocol/native/nativepb --go-grpc_opt=paths=source_relative protocol/native/magnetar.proto
	$(PROTOC) -I . --go_out=. --go_opt=paths=source_relative metadata/catalog/catalogpb/catalog.proto
	$(PROTOC) -I . --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative bookie/bookiepb/bookie.proto
	$(PROTOC) -I . --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative metadata/metadatapb/metadata.proto

check-generated: generate
	@git diff --exit-code -- $(PROTO_GEN) || (echo "generated code is stale: run make generate and commit"; exit 1)

## bench: the benchmarks behind docs/benchmarks.md
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/raftstore/ ./internal/record/ ./bookie/ ./metadata/
	$(GO) test -run '^$$' -bench 'Produce' -benchmem -benchtime 100000x ./tests/
	$(GO) test -run '^$$' -bench 'KafkaVsKfake' -benchtime 500000x ./tests/

## fuzz: run each fuzz target for FUZZTIME (default 20s)
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

## compat-kafka: franz-go's own kgo integration suite against a standalone the
## script starts (about 1.5 minutes; not part of `make test`). COMPAT_KAFKA_SKIP
## lists the tests left out, each explained in docs/kafka-compat.md.
COMPAT_KAFKA_SKIP ?= ^TestTxnEtl$$|^TestClient_ProduceLargeMessages$$|^TestConsumeRegex$$
compat-kafka:
	GO=$(GO) KGO_SKIP='$(COMPAT_KAFKA_SKIP)' ./scripts/compat-kafka.sh

clean:
	rm -rf $(BIN)
