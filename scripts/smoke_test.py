#!/usr/bin/env python3
"""Local smoke test of the deployable function, the way a user tries it before deploying.

    scripts/smoke_test.py                              run the smoke test
    scripts/smoke_test.py prepare-watch TABLE FILE     seed DynamoDB Local, write the env file for watch

Starts DynamoDB Local, seeds it for the sample events (examples/seed-sample-tables.rs), runs
`cargo lambda watch`, invokes every file in events/ with `cargo lambda invoke --data-file`, and checks
each response's batch item failures and the EMF document the function printed against
events/expected.json. Exits non-zero on any difference.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, ".cache")


def local_env(table, endpoint):
    """The function's environment for local runs (also what `make watch` writes)."""
    return {
        "AWS_ACCESS_KEY_ID": "sourceaccount",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.path.join(ROOT, "scripts", "local-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "VERIFY_TABLE_NAME": table,
        "VERIFY_PROFILE": "target-account",
        "MAX_REPLICATION_LAG": "3s",
        "RUST_LOG": "info,aws_config=warn",
    }


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.5)
    return False


def emf_documents(text):
    docs = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and '"_aws"' in line:
            docs.append(json.loads(line))
    return docs


def start_dynamodb_local():
    return subprocess.run(
        ["bash", os.path.join(ROOT, "scripts", "dynamodb-local.sh"), "start"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()


def seed(endpoint):
    env = dict(os.environ, **local_env("Orders", endpoint))
    subprocess.run(["cargo", "run", "--quiet", "--example", "seed-sample-tables"], cwd=ROOT, env=env, check=True)


def write_env_file(path, table, endpoint):
    with open(path, "w") as f:
        for key, value in local_env(table, endpoint).items():
            f.write(f'{key}="{value}"\n')


def main():
    endpoint = start_dynamodb_local()
    expected = {k: v for k, v in json.load(open(os.path.join(ROOT, "events", "expected.json"))).items()
                if not k.startswith("_")}
    missing = sorted(set(f for f in os.listdir(os.path.join(ROOT, "events"))
                         if f.endswith(".json") and f != "expected.json") - set(expected))
    if missing:
        print(f"smoke: events without an expectation in events/expected.json: {missing}")
        return 1

    seed(endpoint)

    passed, failed = 0, 0
    os.makedirs(CACHE, exist_ok=True)
    for table in sorted(set(e["table"] for e in expected.values())):
        env_file = os.path.join(CACHE, f"smoke-{table}.env")
        write_env_file(env_file, table, endpoint)
        port = free_port()
        log_path = os.path.join(CACHE, f"smoke-watch-{table}.log")
        log = open(log_path, "w")
        watch = subprocess.Popen(
            ["cargo", "lambda", "watch", "--invoke-port", str(port), "--env-file", env_file],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            if not wait_for_port(port, 120):
                print(f"smoke: cargo lambda watch did not listen on {port}; see {log_path}")
                return 1
            for name, want in sorted(expected.items()):
                if want["table"] != table:
                    continue
                before = len(emf_documents(open(log_path).read()))
                out = subprocess.run(
                    ["cargo", "lambda", "invoke", "stream-verifier", "--invoke-port", str(port),
                     "--data-file", os.path.join("events", name), "--output-format", "json"],
                    cwd=ROOT, capture_output=True, text=True, timeout=600,
                )
                problems = []
                try:
                    response = json.loads(out.stdout)
                    failures = len(response["batchItemFailures"])
                    if failures != want["failures"]:
                        problems.append(f"{failures} batch item failures, expected {want['failures']}")
                except (IndexError, KeyError, ValueError):
                    problems.append(f"no Lambda response: {out.stdout!r} {out.stderr[-2000:]!r}")
                docs = []
                for _ in range(50):  # the EMF line may reach the log just after the response
                    docs = emf_documents(open(log_path).read())[before:]
                    if docs:
                        break
                    time.sleep(0.1)
                if not docs:
                    problems.append("no EMF document printed")
                else:
                    merged = {}
                    for d in docs:
                        merged.update(d)
                    for metric, value in want["metrics"].items():
                        if merged.get(metric) != value:
                            problems.append(f"{metric}={merged.get(metric)}, expected {value}")
                if problems:
                    failed += 1
                    print(f"FAIL {name}: " + "; ".join(problems))
                else:
                    passed += 1
                    print(f"ok   {name}: {json.dumps(response)}  EMF {json.dumps(want['metrics'])}")
        finally:
            os.killpg(watch.pid, signal.SIGTERM)
            watch.wait(timeout=30)
            log.close()
    print(f"smoke: {passed} passed, {failed} failed")
    return 1 if failed else 0


def prepare_watch(table, path):
    """`make watch`: DynamoDB Local started and seeded, and the function's env file written."""
    endpoint = start_dynamodb_local()
    seed(endpoint)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_env_file(path, table, endpoint)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "prepare-watch":
        sys.exit(prepare_watch(sys.argv[2], sys.argv[3]))
    sys.exit(main())
