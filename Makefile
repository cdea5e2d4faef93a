# Quick start:  make demo   (the verifier over a local stream with drift)
#               make test   (everything CI runs, against DynamoDB Local)
SHELL := /bin/bash
DDB_LOCAL := scripts/dynamodb-local.sh

# The demo's environment: the function's own account is the access key "sourceaccount"; the other
# account is the profile "target-account" of scripts/local-aws-config (access key "targetaccount").
DEMO_ENV = AWS_ACCESS_KEY_ID=sourceaccount AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 \
	AWS_CONFIG_FILE=$(CURDIR)/scripts/local-aws-config AWS_SHARED_CREDENTIALS_FILE=/dev/null \
	AWS_ENDPOINT_URL_DYNAMODB=$$($(DDB_LOCAL) start) AWS_ENDPOINT_URL_DYNAMODB_STREAMS=$$($(DDB_LOCAL) start) \
	RUST_LOG=info,aws_config=warn \
	VERIFY_TABLE_NAME=Orders VERIFY_PROFILE=target-account \
	MAX_REPLICATION_LAG=3s LAG_WINDOW_FROM=arrival METRICS_NAMESPACE=DynamoDbMigrationVerifier/Demo

.PHONY: demo test lint dynamodb-local stop-dynamodb-local clean

demo:
	$(DEMO_ENV) cargo run --quiet --example local-demo

test:
	AWS_ENDPOINT_URL= DYNAMODB_LOCAL_ENDPOINT=$$($(DDB_LOCAL) start) cargo test --all-targets

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

dynamodb-local:
	$(DDB_LOCAL) start

stop-dynamodb-local:
	$(DDB_LOCAL) stop

clean:
	cargo clean
