# qftp: run `make help` for the targets.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
DATA     ?= ./var/qftpd
LISTEN   ?= 127.0.0.1:7443

.PHONY: help build run test test-short lint vet fmt fuzz soak bench bench-net bench-fair clean

help: ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/qftpd and bin/qftp
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/qftpd ./cmd/qftp

run: build ## start qftpd on 127.0.0.1:7443 with data in ./var/qftpd (creates user demo)
	./bin/qftpd --data $(DATA) serve --listen $(LISTEN) --demo

test: ## run all tests with the race detector
	$(GO) vet ./...
	$(GO) test -race -shuffle=on -timeout 15m ./...

test-short: ## quick tests without the race detector
	$(GO) test -short ./...

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fmt: ## format the code
	gofmt -w $$(git ls-files '*.go')

FUZZTIME ?= 30s
fuzz: ## run each fuzz test for FUZZTIME (default 30s)
	$(GO) test -run='^$$' -fuzz='^FuzzReadFrame$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=2s ./transport/
	$(GO) test -run='^$$' -fuzz='^FuzzResolve$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=2s ./fsjail/
	$(GO) test -run='^$$' -fuzz='^FuzzVerifyPassword$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=2s ./session/userdb/
	$(GO) test -run='^$$' -fuzz='^FuzzSplitLine$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=2s ./cmd/qftp/
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=2s ./session/size/

SOAK ?= 5m
soak: ## several users at random puts/gets/mv/rm/interrupts through a lossy link with blackouts, for SOAK (default 5m), race detector on
	QFTP_SOAK=$(SOAK) $(GO) test -race -run='^TestSoak$$' -count=1 -timeout=0 -v ./session/

bench: ## benchmarks: bare quic-go vs qftp put/get on loopback, small files at -j 1/4/16, striping through a lossy relay; then the qftp-bench table
	$(GO) test -run='^$$' -bench='BareQUIC|PutGet|SmallFiles' -benchtime=3x ./session/
	$(GO) test -run='^$$' -bench='LoopbackRatio' -benchtime=9x ./session/
	$(GO) test -run='^$$' -bench='LossyGet' -benchtime=1x ./session/
	$(GO) run ./cmd/qftp-bench --size 64M --files 500

bench-net: ## as root: qftp vs scp/sftp/rsync over the shared network lab (minutes; see docs/BENCHMARKS.md)
	bash docs/bench/netlab.sh

bench-fair: ## as root, after bench-net: how qftp shares a 100 Mbit/s bottleneck with an scp (about 15 minutes)
	bash docs/bench/fairness.sh

clean: ## remove build output
	rm -rf bin
