# 数字黔江民政 backend. Two commands matter: `make run` and `make test`.
GO      ?= go
PKGS    ?= ./...
DATA    ?= ./data

.PHONY: run test test-short build vet lint bench bench-report loadgen fmt migrate tidy clean

GOLANGCI ?= $(shell command -v golangci-lint 2>/dev/null || echo $(HOME)/go/bin/golangci-lint)

## run: the server on embedded defaults (SQLite, in-process Redis, local media, WeChat dev login, demo data) on :8080
run:
	$(GO) run ./cmd/qjmz serve

## test: the whole suite with the race detector; set QJMZ_TEST_MYSQL_DSN / QJMZ_TEST_REDIS_ADDR to also use real MySQL and Redis
test:
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

test-short:
	$(GO) test -short -count=1 $(PKGS)

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/qjmz ./cmd/qjmz

vet:
	$(GO) vet $(PKGS)

## lint: golangci-lint with errorlint and revive (.golangci.yml); installs it through the module proxy when missing
lint:
	@test -x "$(GOLANGCI)" || GOFLAGS= $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
	$(GOLANGCI) run ./...

## loadgen: build the loopback load generator (docs/performance.md)
loadgen:
	$(GO) build -o bin/loadgen ./cmd/loadgen

fmt:
	gofmt -l -w .

## bench: go benchmarks (near-duplicate index, media pipeline, wechat client)
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/...

## bench-report: near-duplicate latency and quality figures (docs/performance.md, docs/neardup.md)
bench-report:
	QJMZ_BENCH_REPORT=1 $(GO) test -count=1 -run 'Report|Quality' -v -timeout 30m ./pkg/neardup/

migrate:
	$(GO) run ./cmd/qjmz migrate

clean:
	rm -rf bin $(DATA)
