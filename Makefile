# Quick start:  make demo   (the verifier over a local stream with drift)
#               make test   (unit and integration tests, against DynamoDB Local)
# Lambda:       make watch, then make invoke EVENT=events/insert.json; make build; make deploy
SHELL := /bin/bash
DDB_LOCAL := scripts/dynamodb-local.sh
# cargo-lambda (with zig), cfn-lint and the SAM CLI live in a project virtualenv, first on PATH
# (sam build finds zig only through the python3 first on PATH).
VENV := $(CURDIR)/.cache/venv
export PATH := $(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
# The templates loop over the table pairs (Fn::ForEach, AWS::LanguageExtensions): the SAM CLI
# expands that itself only when asked (sam validate, build and deploy alike).
export SAM_CLI_ENABLE_LANGUAGE_EXTENSIONS := 1
EVENT ?= events/insert.json
TABLE ?= Orders
DIST := target/lambda/dist
# The Amazon States Language validator (npm), for the baseline compare's state machine.
ASL_VALIDATOR := $(CURDIR)/.cache/asl-validator/node_modules/.bin/asl-validator
# What template.yaml's DefinitionSubstitutions put into statemachine/baseline.asl.json, as sample values.
ASL_SUBSTITUTIONS := -e 's|$${BaselineSegmentFunctionArn}|arn:aws:lambda:us-east-1:123456789012:function:verifier-baseline-segment|g' \
	-e 's|$${BaselineMaxConcurrency}|40|g'

# The demo's environment: the function's own account is the access key "sourceaccount"; the other
# account is the profile "target-account" of scripts/local-aws-config (access key "targetaccount").
DEMO_ENV = AWS_ACCESS_KEY_ID=sourceaccount AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 \
	AWS_CONFIG_FILE=$(CURDIR)/scripts/local-aws-config AWS_SHARED_CREDENTIALS_FILE=/dev/null \
	AWS_ENDPOINT_URL_DYNAMODB=$$($(DDB_LOCAL) start) AWS_ENDPOINT_URL_DYNAMODB_STREAMS=$$($(DDB_LOCAL) start) \
	RUST_LOG=info,aws_config=warn \
	VERIFY_TABLE_NAME=Orders VERIFY_PROFILE=target-account \
	MAX_REPLICATION_LAG=3s LAG_WINDOW_FROM=arrival METRICS_NAMESPACE=DynamoDbMigrationVerifier/Demo

.PHONY: bench demo test fuzz lint tools validate build build-x86 watch invoke smoke deploy dynamodb-local stop-dynamodb-local clean

# The Catalog story (issue 13): a bulk load with drift verified by the shard poller from the stream,
# the baseline compare under live writes, the findings and a NO-GO; then the repair, revalidation
# and a GO. Every step records into the findings table VerifierFindings.
CATALOG_ENV = $(DEMO_ENV) SOURCE_TABLE_NAME=Catalog VERIFY_TABLE_NAME=Catalog \
	CHECKPOINT_TABLE=VerifierCheckpoints FINDINGS_TABLE=VerifierFindings \
	IGNORE_ATTRIBUTES=syncedAt MAX_READ_UNITS=1000
DDB_VERIFY = cargo run --quiet --bin ddb-verify --
SHARD_POLLER = cargo run --quiet --bin shard-poller -- --once

# The stream verifier over the stream's records as Lambda delivers them, then the shard poller
# (the real binary, outside Lambda: one pass) reading the same stream by itself; then the Catalog
# story. `ddb-verify` exits 2 on purpose where problems are shown (findings, NO-GO).
demo:
	$(DEMO_ENV) cargo run --quiet --example local-demo
	$(DEMO_ENV) SOURCE_TABLE_NAME=Orders CHECKPOINT_TABLE=VerifierCheckpoints $(SHARD_POLLER)
	@$(CATALOG_ENV) cargo run --quiet --example baseline-demo -- load
	@echo; echo "== ddb-verify init (the verifier's own tables, as the template makes them)"
	@$(CATALOG_ENV) $(DDB_VERIFY) init
	@echo; echo "== ddb-verify preflight (the set-up, checked before anything is verified)"
	@$(CATALOG_ENV) $(DDB_VERIFY) preflight --poller
	@echo; echo "== The shard poller verifies Catalog's stream (the bulk load), recording each problem"
	@$(CATALOG_ENV) $(SHARD_POLLER)
	@$(CATALOG_ENV) cargo run --quiet --example baseline-demo -- compare
	@echo; echo "== The shard poller verifies the changes made during the compare"
	@$(CATALOG_ENV) $(SHARD_POLLER)
	@echo; echo "== ddb-verify findings"
	@$(CATALOG_ENV) $(DDB_VERIFY) findings; test $$? -eq 2
	@echo; echo "== ddb-verify readiness"
	@$(CATALOG_ENV) $(DDB_VERIFY) readiness; test $$? -eq 2
	@echo; echo "== ddb-verify repair (the plan: nothing is written)"
	@$(CATALOG_ENV) $(DDB_VERIFY) repair; test $$? -eq 2
	@echo; echo "== ddb-verify repair --apply --delete-extra (conditional writes, each finding judged again)"
	@$(CATALOG_ENV) $(DDB_VERIFY) repair --apply --delete-extra
	@echo; echo "== ddb-verify revalidate"
	@$(CATALOG_ENV) $(DDB_VERIFY) revalidate --all
	@$(CATALOG_ENV) $(SHARD_POLLER)
	@echo; echo "== ddb-verify readiness"
	@$(CATALOG_ENV) $(DDB_VERIFY) readiness
	@echo; echo "== ddb-verify readiness --all: both tables of the demo (TABLE_PAIRS); Orders was never baselined, so it is NO-GO and says why"
	@$(CATALOG_ENV) TABLE_PAIRS='[{"source": "Orders"}, {"source": "Catalog", "ignore": ["syncedAt"]}]' \
		$(DDB_VERIFY) readiness --all; test $$? -eq 2

# The integration tests, the demo and the benchmarks use the test kit (the dev-only crate
# testkit/); the binaries never do.
test:
	AWS_ENDPOINT_URL= DYNAMODB_LOCAL_ENDPOINT=$$($(DDB_LOCAL) start) cargo test

# Property tests of the parser and the comparator with many more cases than `make test` runs
# (proptest's default is 256 per property); CI runs it too. FUZZ_CASES per property. They are
# the `properties` module of the integration test binary (tests/it).
FUZZ_CASES ?= 20000
fuzz:
	PROPTEST_CASES=$(FUZZ_CASES) cargo test --test it properties:: -- --nocapture

# Benchmarks (release build; starts DynamoDB Local): one table, recorded in BENCHMARKS.md.
bench:
	python3 scripts/bench.py

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

tools: $(VENV)/bin/cargo-lambda $(ASL_VALIDATOR)

$(VENV)/bin/cargo-lambda:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check cargo-lambda cfn-lint aws-sam-cli

$(ASL_VALIDATOR):
	npm install --silent --no-audit --no-fund --prefix .cache/asl-validator asl-validator@4.0.0

# cfn-lint on both templates, sam validate, and the state machine definition with its substitutions
# filled in (none may be left) through asl-validator.
validate: tools
	cfn-lint template.yaml templates/verify-role.yaml
	sam validate --region us-east-1 --template-file template.yaml
	mkdir -p .cache/asl
	sed $(ASL_SUBSTITUTIONS) statemachine/baseline.asl.json > .cache/asl/baseline.asl.json
	if grep -n '$${' .cache/asl/baseline.asl.json; then echo "unfilled substitutions in statemachine/baseline.asl.json"; exit 1; fi
	$(ASL_VALIDATOR) --json-path .cache/asl/baseline.asl.json

# Release artifacts as Lambda zips: arm64 (the template's default) needs the aarch64 standard library
# (rustup target add aarch64-unknown-linux-gnu); x86_64 needs nothing more. Both link with zig.
# The zipped functions: the stream verifier, the baseline compare's segment worker and the revalidator
# (not the shard poller, which sam build builds with the others).
LAMBDA_BINS := stream-verifier baseline-segment revalidator

build: tools
	mkdir -p $(DIST)
	for bin in $(LAMBDA_BINS); do \
		cargo lambda build --release --arm64 --output-format zip --bin $$bin && \
		cp target/lambda/$$bin/bootstrap.zip $(DIST)/$$bin-arm64.zip || exit 1; \
	done
	ls -l $(foreach bin,$(LAMBDA_BINS),$(DIST)/$(bin)-arm64.zip)

build-x86: tools
	mkdir -p $(DIST)
	for bin in $(LAMBDA_BINS); do \
		cargo lambda build --release --x86-64 --output-format zip --bin $$bin && \
		cp target/lambda/$$bin/bootstrap.zip $(DIST)/$$bin-x86_64.zip || exit 1; \
	done
	ls -l $(foreach bin,$(LAMBDA_BINS),$(DIST)/$(bin)-x86_64.zip)

# The function under cargo lambda's Lambda emulator, against DynamoDB Local seeded for events/.
watch: tools
	python3 scripts/smoke_test.py prepare-watch $(TABLE) $(CURDIR)/.cache/watch.env
	cargo lambda watch --env-file .cache/watch.env

invoke: tools
	cargo lambda invoke stream-verifier --data-file $(EVENT)

smoke: tools
	python3 scripts/smoke_test.py

deploy: tools
	sam build
	if [ -f samconfig.toml ]; then sam deploy; else sam deploy --guided; fi

dynamodb-local:
	$(DDB_LOCAL) start

stop-dynamodb-local:
	$(DDB_LOCAL) stop

clean:
	cargo clean
