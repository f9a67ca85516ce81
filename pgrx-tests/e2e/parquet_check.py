"""Reads an export back with pyarrow and duckdb and prints what it holds, for export.sh to
compare with the database.

  parquet_check.py summary DIR [MANIFEST]   one line: readers' totals (see summarize())
  parquet_check.py s3-fetch ENDPOINT BUCKET PREFIX DIR   downloads every object under PREFIX
  parquet_check.py s3-list ENDPOINT BUCKET PREFIX        prints the keys, one per line

With MANIFEST, the data files are the ones it lists (checked for size, sha256 and rows, and
every listed file must exist); without, every *.parquet under DIR/events and
DIR/policy_evaluations.
"""

import glob
import hashlib
import json
import os
import sys

import duckdb
import pyarrow.parquet as pq


def files_of(root, manifest_path):
    if manifest_path is None:
        return {ds: sorted(glob.glob(f"{root}/{ds}/**/*.parquet", recursive=True))
                for ds in ("events", "policy_evaluations")}
    with open(manifest_path) as f:
        manifest = json.load(f)
    out = {}
    for ds, entry in manifest["datasets"].items():
        paths = []
        for item in entry["files"]:
            path = os.path.join(root, item["path"])
            data = open(path, "rb").read()
            assert len(data) == item["bytes"], f"{path}: size {len(data)} != manifest {item['bytes']}"
            assert hashlib.sha256(data).hexdigest() == item["sha256"], f"{path}: sha256 mismatch"
            assert pq.ParquetFile(path).metadata.num_rows == item["rows"], f"{path}: row count mismatch"
            paths.append(path)
        total = sum(i["rows"] for i in entry["files"])
        assert total == entry["rows"], f"{ds}: files hold {total} rows, manifest says {entry['rows']}"
        out[ds] = paths
    return out


def check_types(path):
    """The warehouse-facing types of one events file and one evaluations file."""
    schema = pq.ParquetFile(path).schema
    problems = []
    by_name = {schema.column(i).name: schema.column(i) for i in range(len(schema))}
    if "timestamp" in by_name:
        ts = by_name["timestamp"]
        if ts.physical_type != "INT64" or "isAdjustedToUTC=true" not in str(ts.logical_type) \
                or "microseconds" not in str(ts.logical_type):
            problems.append(f"timestamp: {ts.physical_type} {ts.logical_type}")
        cost = by_name["cost_usd"]
        if cost.physical_type != "INT64" or str(cost.logical_type) != "Decimal(precision=12, scale=6)":
            problems.append(f"cost_usd: {cost.physical_type} {cost.logical_type}")
        if by_name["input_tokens"].physical_type != "INT32":
            problems.append("input_tokens is not INT32")
        meta = pq.ParquetFile(path).metadata.row_group(0)
        decision = [meta.column(i) for i in range(meta.num_columns) if meta.column(i).path_in_schema == "decision"][0]
        if not any("DICT" in e for e in decision.encodings):
            problems.append(f"decision not dictionary-encoded: {decision.encodings}")
    if "details" in by_name:
        if str(by_name["details"].logical_type) != "JSON":
            problems.append(f"details: {by_name['details'].logical_type}")
        if by_name["id"].physical_type != "INT64":
            problems.append("evaluation id is not INT64")
    return problems


def summarize(root, manifest_path=None):
    files = files_of(root, manifest_path)
    ev, pe = files.get("events", []), files.get("policy_evaluations", [])
    problems = []
    for path in ev[:1] + pe[:1]:
        problems += check_types(path)
    con = duckdb.connect()
    if ev:
        listed = "[" + ",".join(f"'{p}'" for p in ev) + "]"
        n, ids, cost, lo, hi = con.sql(
            f"SELECT count(*), count(DISTINCT id), coalesce(sum(cost_usd), 0), epoch_us(min(\"timestamp\")), "
            f"epoch_us(max(\"timestamp\")) FROM read_parquet({listed}, hive_partitioning = true)").fetchone()
        table = pq.ParquetDataset(ev).read()
        arrow_n = table.num_rows
        arrow_cost = sum((v for v in table.column("cost_usd").to_pylist() if v is not None), 0)
        if arrow_n != n or f"{arrow_cost:.6f}" != f"{cost:.6f}":
            problems.append(f"pyarrow ({arrow_n}, {arrow_cost}) and duckdb ({n}, {cost}) disagree")
    else:
        n, ids, cost, lo, hi = 0, 0, 0, "", ""
    evals = 0
    if pe:
        listed = "[" + ",".join(f"'{p}'" for p in pe) + "]"
        evals = con.sql(f"SELECT count(*) FROM read_parquet({listed})").fetchone()[0]
        if pq.ParquetDataset(pe).read().num_rows != evals:
            problems.append("pyarrow and duckdb disagree on evaluations")
    # the Hive layout as warehouses and duckdb read it: the whole tree, directories as columns
    if ev and manifest_path is None:
        days = con.sql(f"SELECT count(DISTINCT (year, month)) FROM read_parquet('{root}/events/**/*.parquet', "
                       f"hive_partitioning = true)").fetchone()[0]
        if days < 1:
            problems.append("hive columns missing")
    print(f"events={n} distinct={ids} cost={cost:.6f} min_us={lo} max_us={hi} evaluations={evals} "
          f"files={len(ev) + len(pe)} problems={len(problems)}")
    for p in problems:
        print("  problem:", p, file=sys.stderr)


def s3_client(endpoint):
    import boto3
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                        region_name="us-east-1")


def s3_keys(endpoint, bucket, prefix):
    client = s3_client(endpoint)
    keys, token = [], None
    while True:
        kwargs = {"Bucket": bucket, "Prefix": prefix}
        if token:
            kwargs["ContinuationToken"] = token
        page = client.list_objects_v2(**kwargs)
        keys += [o["Key"] for o in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            return keys
        token = page["NextContinuationToken"]


def echo_server(port):
    """An S3 endpoint that refuses every request the way AWS refuses a bad signature: 403 with a
    SignatureDoesNotMatch body echoing the access key id, the string to sign and the session
    token it was sent (AWS does echo the first two). Used to prove error text is scrubbed."""
    import http.server
    import re

    class Refuse(http.server.BaseHTTPRequestHandler):
        def answer(self):
            auth = self.headers.get("Authorization", "")
            key = (re.search(r"Credential=([^/]+)/", auth) or [None, "none"])[1]
            token = self.headers.get("x-amz-security-token", "none")
            body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SignatureDoesNotMatch</Code>"
                    "<Message>The request signature we calculated does not match the signature you provided.</Message>"
                    f"<AWSAccessKeyId>{key}</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256 {auth}</StringToSign>"
                    f"<Token>{token}</Token><SignatureProvided>{auth[-16:]}</SignatureProvided></Error>").encode()
            length = int(self.headers.get("Content-Length", 0) or 0)
            if length:
                self.rfile.read(length)
            self.send_response(403)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = answer

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Refuse).serve_forever()


def main():
    cmd = sys.argv[1]
    if cmd == "s3-echo-server":
        echo_server(sys.argv[2])
        return
    if cmd == "summary":
        summarize(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    elif cmd == "s3-list":
        for key in s3_keys(*sys.argv[2:5]):
            print(key)
    elif cmd == "s3-fetch":
        endpoint, bucket, prefix, target = sys.argv[2:6]
        client = s3_client(endpoint)
        for key in s3_keys(endpoint, bucket, prefix):
            local = os.path.join(target, os.path.relpath(key, prefix))
            os.makedirs(os.path.dirname(local), exist_ok=True)
            client.download_file(bucket, key, local)
    elif cmd == "s3-mkbucket":
        s3_client(sys.argv[2]).create_bucket(Bucket=sys.argv[3])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
