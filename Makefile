# Parley's tasks. Tests need the Postgres server binaries (initdb, pg_ctl,
# postgres), which make test runs as one throwaway cluster shared by all test
# packages; set PARLEY_TEST_DATABASE_URL to use a server of your own instead.

GO ?= go

.DEFAULT_GOAL := help
.PHONY: help build run demo openapi lint test fuzz soak bench

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-8s %s\n", $$1, $$2}'

build: ## build bin/parley
	$(GO) build -o bin/parley ./cmd/parley

# The demo (make demo, on :8081) calls the API from another origin; both
# spellings of it are allowed, since localhost and 127.0.0.1 are different
# origins to a browser. Set PARLEY_CORS_ORIGINS to replace them.
DEMO_ORIGINS := http://localhost:8081,http://127.0.0.1:8081

run: build ## run the API on :8080 with its private Postgres cluster in .parley/ (allowing the demo's origins)
	PARLEY_CORS_ORIGINS="$${PARLEY_CORS_ORIGINS:-$(DEMO_ORIGINS)}" ./bin/parley serve

demo: build ## serve the browser demo on :8081, calling the API of make run on :8080
	./bin/parley demo -addr :8081 -api http://localhost:8080

# The TypeScript client, its tools pinned in api/typescript/package-lock.json.
TS := api/typescript
$(TS)/node_modules/.installed: $(TS)/package.json $(TS)/package-lock.json
	cd $(TS) && npm ci --no-audit --no-fund
	touch $@

openapi: $(TS)/node_modules/.installed ## regenerate openapi.yaml, openapi-3.0.yaml, the Go client in api/ and the TypeScript types in api/typescript/src/schema.d.ts
	$(GO) run ./cmd/parley openapi > openapi.yaml.tmp
	mv openapi.yaml.tmp openapi.yaml
	$(GO) run ./cmd/parley openapi 3.0 > openapi-3.0.yaml.tmp
	mv openapi-3.0.yaml.tmp openapi-3.0.yaml
	$(GO) generate ./api
	cd $(TS) && npm run -s generate

# The lint tools, pinned in tools/lint/package-lock.json (Node 20.19+ and npm).
LINT := tools/lint
$(LINT)/node_modules/.installed: $(LINT)/package.json $(LINT)/package-lock.json
	cd $(LINT) && npm ci --no-audit --no-fund
	touch $@

lint: $(LINT)/node_modules/.installed ## lint both OpenAPI documents (redocly.yaml) and type-check the TypeScript types generated from openapi.yaml
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true $(LINT)/node_modules/.bin/redocly lint
	$(LINT)/node_modules/.bin/openapi-typescript
	$(LINT)/node_modules/.bin/tsc -p $(LINT)

test: ## check formatting, vet, and run all tests with the race detector (the TypeScript client's build, lint and node tests included: internal/e2e/typescript)
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then echo "gofmt -l lists files to format:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run ./internal/localpg/withpg -- $(GO) test -race -count=1 -timeout 12m ./...

# Every fuzz target, as package:name. make fuzz runs each for FUZZTIME, one
# go test -fuzz per target (it takes one at a time, without -race); the
# corpora it grows stay in the Go build cache, the seeds in each package's
# testdata/fuzz/<target>/.
FUZZ_TARGETS := \
	./internal/httpapi:FuzzCheckBody \
	./internal/httpapi:FuzzJSONDepth \
	./internal/httpapi:FuzzFrame \
	./internal/httpapi:FuzzMessageFrame \
	./internal/httpapi:FuzzRefuseDotKeys \
	./internal/postgres:FuzzDecodeNotification \
	./internal/postgres:FuzzDecodeAnnouncement \
	./internal/chat:FuzzCursorDecode \
	./internal/chat:FuzzCursorRoundTrip \
	./internal/chat:FuzzReactionKey \
	./internal/chat:FuzzNormalizeUsername \
	./internal/chat:FuzzCheckText \
	./internal/limits:FuzzClientIP
FUZZTIME ?= 15s

fuzz: ## run every fuzz target for FUZZTIME each (default 15s: about 6 minutes in all on 2 cores)
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "make fuzz: $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$pkg"; \
	done

# PARLEY_SOAK_DURATION (default 3m), PARLEY_SOAK_SUBSCRIBERS, PARLEY_SOAK_ROOMS
# and PARLEY_SOAK_POST_EVERY shape the soak.
soak: ## run the soak: two replicas (built without -race) for 3 minutes of streams churning while posts flow; prints one summary line
	$(GO) run ./internal/localpg/withpg -- $(GO) test -tags soak -count=1 -timeout 9m -run '^TestSoak$$' -v ./internal/e2e/soak/

bench: ## run the load scenarios (minutes; not part of test): reports in bench-results/
	scripts/bench.sh
