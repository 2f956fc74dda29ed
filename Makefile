# ferry — two commands matter: `make demo` and `make test`. Each installs
# what it needs (Debian packages through scripts/deps.sh) idempotently.

GO       ?= go
BIN      := bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/ferrydeploy/ferry/internal/cli.Version=$(VERSION)
HOSTS    ?= 5

.PHONY: all build test test-nonroot unit lint fuzz bench scale demo deps clean docs

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ferry ./cmd/ferry
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ferry-lab ./internal/testrig/lab/cmd/ferry-lab

# containers: podman, for the docker module's test against real containers
# on a lab host (tasks/lab_test.go); ansible: ansible-core, for the test that
# runs one Ansible playbook with both tools (internal/cli/ansible_lab_test.go),
# and Debian's ansible (amazon.aws, community.aws) with python3-boto3, for
# the Ansible ELB playbook against the emulator (ansible_aws_lab_test.go);
# browser: chromium, for the tests that load `ferry report` pages headless.
deps:
	scripts/deps.sh test containers ansible browser sqs

# The whole suite, in scripts/test.sh's processes at once: make lint, the
# race detector on the packages that run hosts concurrently, internal/cli's
# lab tests in parallel in one process (each with its own lab), every other
# package, and make test-nonroot: unit tests, fuzz seeds, and the
# integration tests that start real sshd processes in network namespaces
# (they need root; elsewhere they skip with the reason).
test: deps
	GO=$(GO) MAKE=$(MAKE) scripts/test.sh lint nonroot

# The edit-test loop, in seconds: every test that needs no root, no lab and
# nothing from apt (-short: labs, the SQS emulator and long cases skip,
# saying why), and vet. Runs as any user.
unit:
	$(GO) vet ./...
	$(GO) test -short -count=1 ./...

# gofmt, vet, a tidy go.mod, and staticcheck (pinned in go.mod as a tool;
# staticcheck.conf says which checks and why).
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet ./...
	@$(GO) mod tidy -diff >/dev/null || { $(GO) mod tidy -diff; echo 'go.mod/go.sum are not tidy: run go mod tidy'; exit 1; }
	$(GO) tool staticcheck ./...

# The CLI scripts (cmd/ferry/testdata/script) need no host and no root:
# run them again as an unprivileged user, which proves it.
test-nonroot:
	@d=$$(mktemp -d) && chmod 755 $$d && mkdir $$d/tmp && chown 65534:65534 $$d/tmp && \
	$(GO) test -c -o $$d/cli.test ./cmd/ferry && \
	(cd cmd/ferry && setpriv --reuid=65534 --regid=65534 --clear-groups \
		env HOME=$$d/tmp TMPDIR=$$d/tmp FERRY_TEST_NONROOT=1 $$d/cli.test -test.count=1); \
	rc=$$?; rm -rf $$d; exit $$rc

# docs/modules.md is generated from the module Specs (the source of
# `ferry doc`); the test suite fails when it is stale.
docs:
	$(GO) test ./tasks -run TestModulesDocUpToDate -update

# Issue 13's scale acceptance on 100 hosts, then on a 1,000-host lab (make
# test runs a 20-host smoke of the same path): about 10 GB of memory and
# several minutes. SCALE_HOSTS="N ..." for other sizes.
SCALE_HOSTS ?= 100 1000
scale:
	for n in $(SCALE_HOSTS); do \
		FERRY_SCALE_HOSTS=$$n $(GO) test -count=1 -timeout 40m -run 'TestScale$$' -v ./internal/cli || exit 1; \
	done

# Runs each fuzz target for a while (FUZZTIME=30s by default).
FUZZTIME ?= 30s
fuzz:
	scripts/fuzz.sh $(FUZZTIME)

bench: build
	scripts/deps.sh bench
	scripts/bench.sh

# A real rolling deploy through a bastion to a local fleet of sshd hosts in
# network namespaces, shown in the TUI.
demo: build
	scripts/deps.sh demo
	BIN=$(BIN) scripts/demo.sh $(HOSTS)

clean:
	rm -rf $(BIN)
