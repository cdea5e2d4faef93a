#!/usr/bin/env python3
"""`make bench`: every benchmark of BENCHMARKS.md in one run, printed as one table.

CPU per record (criterion), lookups and poller drain against DynamoDB Local (benches/lookups.rs),
peak memory of the handler on a 10,000-record event (benches/memory.rs under /usr/bin/time -v),
the baseline compare against its I/O floor, its peak memory over a small and a large table and its
read rate (benches/baseline.rs), start-up time of the release stream-verifier (process start to its
first Runtime API request), and the release binary's size.

    scripts/bench.py [SECTION...]   sections: cpu lookups memory baseline startup (default: all)

(memory reads the BenchOrders table that lookups loads: run lookups before it.)

The target folder is $CARGO_TARGET_DIR when set, else target/.
"""
import json
import os
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
SECTIONS = ["cpu", "lookups", "memory", "baseline", "startup"]


def run(cmd, env=None, capture=True):
    return subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=capture, text=True)


def bench_executable(name):
    out = run(["cargo", "bench", "--no-run", "--bench", name, "--message-format=json"]).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") and msg["target"]["name"] == name:
            return msg["executable"]
    sys.exit(f"bench: no executable for {name}")


def startup_ms(binary, env, runs=10):
    """Milliseconds from spawning the binary to its first request to the Lambda Runtime API."""
    times = []
    for _ in range(runs):
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        e = dict(env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}")
        started = time.perf_counter()
        proc = subprocess.Popen([binary], env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server.settimeout(10)
        conn, _ = server.accept()
        times.append((time.perf_counter() - started) * 1000)
        conn.close()
        proc.kill()
        proc.wait()
        server.close()
    return min(times), statistics.median(times)


def main():
    wanted = sys.argv[1:] or SECTIONS
    unknown = [w for w in wanted if w not in SECTIONS]
    if unknown:
        sys.exit(f"bench: unknown section(s) {unknown}; sections: {' '.join(SECTIONS)}")
    endpoint = run(["bash", "scripts/dynamodb-local.sh", "start"]).stdout.strip()
    env = dict(os.environ, DYNAMODB_LOCAL_ENDPOINT=endpoint)
    rows = []

    if "cpu" in wanted:
        cpu(rows)
    if "lookups" in wanted:
        lookups(rows, env)
    if "memory" in wanted:
        memory(rows, env)
    if "baseline" in wanted:
        baseline(rows, env)
    if "startup" in wanted:
        startup(rows, env, endpoint)

    width = max(len(r[0]) for r in rows)
    print()
    print(f"{'benchmark':<{width}}  {'figure':<34}  goal / note")
    for name, figure, goal in rows:
        print(f"{name:<{width}}  {figure:<34}  {goal}")


def cpu(rows):
    print("bench: CPU per record (criterion)...", file=sys.stderr)
    run(["cargo", "bench", "--bench", "cpu"], capture=False)
    per = {}
    for case in ["baseline_skip_json", "baseline_skip_json_str", "baseline_json_value", "event_json_to_records", "event_json_to_records_serde", "event_json_to_records_runtime_serde", "compare_1kb_item", "compare_1kb_sdk_items", "end_to_end"]:
        for n in [1, 100, 10000]:
            path = os.path.join(TARGET, "criterion", "per_record", case, str(n), "new", "estimates.json")
            est = json.load(open(path))
            per[case, n] = est["median"]["point_estimate"] / n / 1000
            goal = {"baseline_skip_json": "serde_json, building nothing (from bytes, as Lambda's payload)",
                    "baseline_skip_json_str": "the same from a &str",
                    "baseline_json_value": "serde_json::Value tree",
                    "event_json_to_records": "the byte reader (what the function runs)",
                    "event_json_to_records_serde": "the serde reader alone",
                    "event_json_to_records_runtime_serde": "the serde reader as lambda_runtime calls it",
                    "compare_1kb_item": "a Lambda record's image (tape) against the SDK item found",
                    "compare_1kb_sdk_items": "two SDK items (poller, baseline)"}.get(case, "")
            rows.append((f"cpu {case}, batch {n}", f"{per[case, n]:.2f} us/record", goal))
    for n in [1, 100, 10000]:
        ratio = per["end_to_end", n] / per["baseline_skip_json", n]
        rows.append((f"ratio cpu end_to_end / serde_json pass, batch {n}", f"{ratio:.2f}",
                     "<= 2 (batch 100)" if n == 100 else ""))
    # The handler as the function runs it (engine, in-memory reader, reports); batches 1 and 100.
    for n in [1, 100]:
        path = os.path.join(TARGET, "criterion", "per_record", "handler_in_memory", str(n), "new", "estimates.json")
        us = json.load(open(path))["median"]["point_estimate"] / n / 1000
        rows.append((f"cpu handler_in_memory, batch {n}", f"{us:.2f} us/record",
                     f"{us / per['baseline_skip_json', n]:.2f} x the serde_json pass (measured)"))


def lookups(rows, env):
    print("bench: lookups and poller drain against DynamoDB Local...", file=sys.stderr)
    results = {}
    for line in run(["cargo", "bench", "--bench", "lookups"], env=env).stdout.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            results[r["name"]] = r
    a, b, c = results["a_raw_batch_get_item"], results["b_engine"], results["c_original_get_item"]
    for r, label in [(a, "a raw BatchGetItem loop"), (b, "b verification engine"), (c, "c original tool: GetItem per record, no sleeps")]:
        rows.append((f"lookups {label}", f"{r['best_per_s']:.0f} rec/s best, {r['median_per_s']:.0f} median",
                     f"{r['calls'] * 100 / r['records']:.2f} calls/100 keys"))
    rows.append(("ratio b/a (median)", f"{b['median_per_s'] / a['median_per_s']:.2f}", ">= 0.9"))
    rows.append(("ratio b/c (median)", f"{b['median_per_s'] / c['median_per_s']:.1f}", ">= 20"))
    rows.append(("API calls per 100 keys, b", f"{b['calls'] * 100 / b['records']:.2f}", "1"))
    d = results["d_engine_findings"]
    rows.append(("lookups d engine + findings leg (all MATCH)", f"{d['best_per_s']:.0f} rec/s best, {d['median_per_s']:.0f} median",
                 f"{d['calls'] * 100 / d['records']:.2f} calls/100 keys"))
    rows.append(("ratio d/b (median): the findings leg's cost", f"{d['median_per_s'] / b['median_per_s']:.2f}", "(no goal; measured)"))
    a2, b2, c2, d2 = (results[f"{n}_2ms"] for n in ["a_raw_batch_get_item", "b_engine", "c_original_get_item", "d_engine_findings"])
    for r, label in [(a2, "a raw BatchGetItem loop"), (b2, "b verification engine"), (c2, "c original tool, GetItem per record"), (d2, "d engine + findings leg")]:
        rows.append((f"lookups +2 ms a call: {label}", f"{r['best_per_s']:.0f} rec/s best, {r['median_per_s']:.0f} median",
                     f"{r['records']:,} records"))
    rows.append(("ratio b/a, +2 ms (median)", f"{b2['median_per_s'] / a2['median_per_s']:.2f}", ">= 0.9"))
    rows.append(("ratio b/c, +2 ms (median)", f"{b2['median_per_s'] / c2['median_per_s']:.1f}", ">= 20"))
    rows.append(("ratio d/b, +2 ms (median): the findings leg's cost", f"{d2['median_per_s'] / b2['median_per_s']:.2f}", "(no goal; measured)"))
    raw, poll = results["poller_raw_get_records"], results["poller_run"]
    rows.append(("poller raw GetRecords loop", f"{raw['median_per_s']:.0f} rec/s median", f"{raw['calls']} calls"))
    rows.append(("poller run (reads, verifies, checkpoints)", f"{poll['median_per_s']:.0f} rec/s median", f"{poll['calls']} GetRecords calls"))
    rows.append(("ratio poller/raw (median)", f"{poll['median_per_s'] / raw['median_per_s']:.2f}", "(measured; the goal is the next row)"))
    ratio = results["poller_ratio"]
    rows.append(("ratio poller / min(raw GetRecords, engine b) (median)", f"{ratio['ratio']:.2f}", ">= 0.8"))
    # Here one DynamoDB Local on the same 2 cores serves both the stream and the lookups, so their
    # costs add: the poller's ceiling on this machine is the two done one after the other.
    serial = 1 / (1 / ratio["raw_get_records_per_s"] + 1 / ratio["engine_per_s"])
    rows.append(("ratio poller / (raw GetRecords then engine b, serially) (median)", f"{ratio['poller_per_s'] / serial:.2f}",
                 "(measured)"))
    # Both ceilings run at once: what the poller's overlap can reach when one endpoint serves both.
    at_once = results["poller_ceiling_at_once"]
    rows.append(("poller ceiling: raw GetRecords loop and engine b at once", f"{at_once['median_per_s']:.0f} rec/s median",
                 f"{at_once['median_per_s'] / min(ratio['raw_get_records_per_s'], ratio['engine_per_s']):.2f} of min(raw, engine b)"))
    rows.append(("ratio poller / (raw GetRecords and engine b at once) (median)", f"{ratio['ratio_at_once']:.2f}",
                 "(measured: the ceiling when one endpoint serves both)"))


def memory(rows, env):
    print("bench: memory...", file=sys.stderr)
    exe = bench_executable("memory")
    # 10,000 records (the mapping's largest batch), and 3,500: about Lambda's 6 MB payload limit with
    # these images, so the largest event Lambda can actually deliver.
    for records, goal in [(10000, "<= 64 MB"), (3500, "<= 32 MB (about Lambda's 6 MB payload limit)")]:
        event_file = os.path.join(TARGET, f"bench-event-{records}.json")
        subprocess.run([exe, "write", event_file, str(records)], check=True)
        peaks = []
        for _ in range(3):
            out = subprocess.run(["/usr/bin/time", "-v", exe, event_file], env=env, capture_output=True, text=True, check=True)
            kb = next(int(l.split(":")[1]) for l in out.stderr.splitlines() if "Maximum resident set size" in l)
            peaks.append(kb / 1024)
        size_mb = os.path.getsize(event_file) / 1e6
        rows.append((f"peak memory, {records:,}-record event ({size_mb:.1f} MB, ~1 KB images)", f"{min(peaks):.1f} MB min, {statistics.median(peaks):.1f} median", goal))


def baseline(rows, env):
    print("bench: baseline compare against DynamoDB Local...", file=sys.stderr)
    results = {}
    # Its progress (loading, each run) goes to stderr as it happens; the results are on stdout.
    out = subprocess.run(["cargo", "bench", "--bench", "baseline"], cwd=ROOT, env=env, check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    for line in out.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            results.setdefault(r["name"], []).append(r)
    b, f = results["baseline_compare"][0], results["baseline_floor"][0]
    shape = f"{b['items'] // 2:,} items x 2 tables, {b['segments']} segments, {b['concurrency']} in flight"
    for r, label in [(b, f"baseline a: compare, {shape}"), (f, "baseline b: floor (a parallel Scan of each table)")]:
        rows.append((label, f"{r['best_per_s']:.0f} items/s best, {r['median_per_s']:.0f} median",
                     f"{r['read_units']:.0f} read units, {r['batch_get_calls']} BatchGetItem, {r['scan_pages']} Scan pages"))
    rows.append(("ratio baseline a/b, items per second (median)", f"{b['median_per_s'] / f['median_per_s']:.2f}", ">= 0.85"))
    rows.append(("ratio baseline a/b, read units", f"{b['read_units'] / f['read_units']:.2f}", "<= 1.1"))
    d = results["baseline_drift"][0]
    rows.append((f"baseline with 1% drift ({d['drifted']} of {d['items']:,} items differ)",
                 f"{d['point_reads']} point reads, {d['point_reads'] / d['drifted']:.1f} per drifted item", "<= 3 per drifted item"))
    peaks = sorted(results["baseline_memory"], key=lambda r: r["items"])
    for r in peaks:
        rows.append((f"baseline peak memory, {r['items']:,} items (ddb-verify baseline)",
                     f"{r['min_mb']:.1f} MB min, {r['median_mb']:.1f} median", "independent of table size"))
    small, large = peaks[0], peaks[-1]
    rows.append((f"ratio peak {large['items']:,} / {small['items']:,} items (median)",
                 f"{large['median_mb'] / small['median_mb']:.2f}", "within 20% (0.8-1.2)"))
    r = results["baseline_rate"][0]
    rows.append((f"baseline read rate, MAX_READ_UNITS={r['max_read_units']:.0f}, {r['items']:,} items",
                 f"{r['source_per_s']:.1f} / {r['target_per_s']:.1f} units/s src/other",
                 f"{0.9 * r['max_read_units']:.0f}-{1.1 * r['max_read_units']:.0f} (within 10%)"))


def startup(rows, env, endpoint):
    print("bench: start-up and size...", file=sys.stderr)
    run(["cargo", "build", "--release", "--bin", "stream-verifier", "--bin", "shard-poller"])
    binary = os.path.join(TARGET, "release", "stream-verifier")
    fn_env = dict(env, VERIFY_TABLE_NAME="Orders", AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="bench",
                  AWS_SECRET_ACCESS_KEY="bench", AWS_ENDPOINT_URL_DYNAMODB=endpoint, AWS_LAMBDA_FUNCTION_NAME="bench",
                  AWS_LAMBDA_FUNCTION_VERSION="1", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128")
    best, median = startup_ms(binary, fn_env)
    rows.append(("start-up to ready for events", f"{best:.1f} ms min, {median:.1f} median", "<= 50 ms"))
    for name in ["stream-verifier", "shard-poller"]:
        size = os.path.getsize(os.path.join(TARGET, "release", name)) / 1e6
        rows.append((f"release binary {name} (x86_64, host build)", f"{size:.1f} MB", "<= 15 MB"))
    dist = os.path.join(TARGET, "lambda", "dist")
    if os.path.isdir(dist):
        for f in sorted(os.listdir(dist)):
            rows.append((f"artifact {f}", f"{os.path.getsize(os.path.join(dist, f)) / 1e6:.1f} MB zip", ""))


if __name__ == "__main__":
    main()
