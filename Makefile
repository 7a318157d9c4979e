# Parley's tasks. Tests need the Postgres server binaries (initdb, pg_ctl,
# postgres), which make test runs as one throwaway cluster shared by all test
# packages; set PARLEY_TEST_DATABASE_URL to use a server of your own instead.

GO ?= go

.DEFAULT_GOAL := help
.PHONY: help build run openapi test bench

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-8s %s\n", $$1, $$2}'

build: ## build bin/parley
	$(GO) build -o bin/parley ./cmd/parley

run: build ## run the API on :8080 with its private Postgres cluster in .parley/
	./bin/parley serve

openapi: ## regenerate openapi.yaml and the Go client in api/ from it
	$(GO) run ./cmd/parley openapi > openapi.yaml.tmp
	mv openapi.yaml.tmp openapi.yaml
	$(GO) generate ./api

test: ## check formatting, vet, and run all tests with the race detector
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then echo "gofmt -l lists files to format:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run ./internal/localpg/withpg -- $(GO) test -race -count=1 -timeout 12m ./...

bench: ## run the load scenarios (minutes; not part of test): reports in bench-results/
	scripts/bench.sh
