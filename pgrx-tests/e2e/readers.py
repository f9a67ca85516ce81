"""The read-back matrix: one export read by pyarrow, DuckDB, Polars, pandas and fastparquet the
way their users read a Hive-partitioned prefix, without options.

  readers.py totals ROOT DAY       one line per reader: what it read (for export.sh to compare
                                   with the database) and the problems it met
  readers.py schema ROOT           a Markdown table: the type each reader gives each column

Totals per reader: events, their cost sum (6 decimals), input token sum, events of day DAY (of
the month) selected by an integer comparison on the Hive column, evaluations, and details
values that the reader hands over as text (or parsed JSON) that parse as JSON objects. A problem is anything a
user would trip over: a Hive column not typed as an integer, a timestamp without its UTC zone,
details that cannot be used as text or parsed as JSON.
"""

import glob
import json
import sys
from decimal import Decimal


def files(root, dataset):
    return sorted(glob.glob(f"{root}/{dataset}/**/*.parquet", recursive=True))


def is_json_object_text(value):
    if isinstance(value, (dict, list)):
        return True  # the reader parsed it already
    try:
        return isinstance(json.loads(value), dict)
    except (TypeError, ValueError):
        return False


def line(name, events, cost, tokens, day_rows, evaluations, details_ok, problems):
    cost = Decimal(str(cost)).quantize(Decimal("0.000001"))
    return (f"{name}: events={events} cost={cost} tokens={tokens} day_rows={day_rows} "
            f"evaluations={evaluations} details_json={details_ok} problems={'; '.join(problems) or 'none'}")


def with_pyarrow(root, day):
    import pyarrow.compute as pc
    import pyarrow.dataset as ds
    events = ds.dataset(f"{root}/events", format="parquet", partitioning="hive")
    evals = ds.dataset(f"{root}/policy_evaluations", format="parquet", partitioning="hive")
    schemas = {"events": events.schema, "policy_evaluations": evals.schema}
    t = events.to_table()
    day_rows = events.to_table(filter=ds.field("day") == day).num_rows
    details = evals.to_table(columns=["details"]).column("details")
    ok = sum(1 for v in details.to_pylist() if v is not None and is_json_object_text(v))
    problems = arrow_problems(schemas)
    row = line("pyarrow", t.num_rows, pc.sum(t.column("cost_usd")).as_py(), pc.sum(t.column("input_tokens")).as_py(),
               day_rows, evals.count_rows(), ok, problems)
    return row, {k: {f.name: str(f.type) for f in s} for k, s in schemas.items()}


def arrow_problems(schemas):
    problems = []
    for dataset, schema in schemas.items():
        for f in schema:
            t = str(f.type)
            if f.name in ("year", "month", "day") and not t.startswith("int"):
                problems.append(f"{dataset}.{f.name} is {t}")
            if f.name in ("timestamp", "event_timestamp", "created_at") and "UTC" not in t:
                problems.append(f"{dataset}.{f.name} is {t}")
            if f.name == "details" and t not in ("string", "large_string", "utf8"):
                problems.append(f"details is {t}")
    return problems


def with_duckdb(root, day):
    import duckdb
    con = duckdb.connect()
    ev = f"read_parquet('{root}/events/**/*.parquet', hive_partitioning = true)"
    pe = f"read_parquet('{root}/policy_evaluations/**/*.parquet', hive_partitioning = true)"
    schemas = {name: dict((r[0], r[1]) for r in con.sql(f"DESCRIBE SELECT * FROM {src}").fetchall())
               for name, src in (("events", ev), ("policy_evaluations", pe))}
    n, cost, tokens = con.sql(f"SELECT count(*), sum(cost_usd), sum(input_tokens) FROM {ev}").fetchone()
    problems = []
    try:
        day_rows = con.sql(f"SELECT count(*) FROM {ev} WHERE day = {day}").fetchone()[0]
    except duckdb.Error as e:
        day_rows, problems = 0, [f"WHERE day = {day}: {str(e).splitlines()[0]}"]
    evaluations = con.sql(f"SELECT count(*) FROM {pe}").fetchone()[0]
    # usable as JSON: DuckDB's json functions on the column as it comes, and as text
    ok = con.sql(f"SELECT count(*) FROM {pe} WHERE json_type(details::varchar) = 'OBJECT'").fetchone()[0]
    for dataset, schema in schemas.items():
        for col, t in schema.items():
            if col in ("year", "month", "day") and t not in ("BIGINT", "INTEGER"):
                problems.append(f"{dataset}.{col} is {t}")
            if col in ("timestamp", "event_timestamp", "created_at") and t != "TIMESTAMP WITH TIME ZONE":
                problems.append(f"{dataset}.{col} is {t}")
    if schemas["policy_evaluations"].get("details") not in ("JSON", "VARCHAR"):
        problems.append(f"details is {schemas['policy_evaluations'].get('details')}")
    return line("duckdb", n, cost, tokens, day_rows, evaluations, ok, problems), schemas


def with_polars(root, day):
    import io
    import polars as pl
    ev = pl.scan_parquet(f"{root}/events/**/*.parquet", hive_partitioning=True)
    pe = pl.scan_parquet(f"{root}/policy_evaluations/**/*.parquet", hive_partitioning=True)
    schemas = {"events": {k: str(v) for k, v in ev.collect_schema().items()},
               "policy_evaluations": {k: str(v) for k, v in pe.collect_schema().items()}}
    t = ev.select(pl.len(), pl.col("cost_usd").sum(), pl.col("input_tokens").sum()).collect()
    n, cost, tokens = t.row(0)
    problems = []
    day_rows = ev.filter(pl.col("day") == day).select(pl.len()).collect().item()
    evaluations = pe.select(pl.len()).collect().item()
    ok = 0
    try:
        details = pe.select("details").collect()
        ok = details.filter(pl.col("details").str.len_bytes() > 0).height  # string functions
        shape = pl.Struct({"rule": pl.String, "score": pl.Float64})  # the sample's details
        parsed = details.select(pl.col("details").str.json_decode(shape)).to_series()
        ok = min(ok, parsed.drop_nulls().len())
        details.write_csv(io.StringIO())
    except Exception as e:  # polars raises many kinds; the point is that a user's call failed
        problems.append(f"details: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
        ok = 0
    for dataset, schema in schemas.items():
        for col, t in schema.items():
            if col in ("year", "month", "day") and not t.startswith("Int"):
                problems.append(f"{dataset}.{col} is {t}")
            if col in ("timestamp", "event_timestamp", "created_at") and "UTC" not in t:
                problems.append(f"{dataset}.{col} is {t}")
    return line("polars", n, cost, tokens, day_rows, evaluations, ok, problems), schemas


def dtype(series):
    """A pandas column's dtype; Hive columns come as categories, and what matters is the type of
    their values."""
    t = str(series.dtype)
    return f"category[{series.cat.categories.dtype}]" if t == "category" else t


def frame_line(name, ev, pe, day, hive_types, cost):
    """The totals line of a reader that hands over pandas frames (pandas, fastparquet)."""
    schemas = {"events": {k: dtype(ev[k]) for k in ev.columns},
               "policy_evaluations": {k: dtype(pe[k]) for k in pe.columns}}
    problems = []
    for dataset, schema in schemas.items():
        for col, t in schema.items():
            if col in ("year", "month", "day") and t not in hive_types:
                problems.append(f"{dataset}.{col} is {t}")
            if col in ("timestamp", "event_timestamp", "created_at") and "UTC" not in t:
                problems.append(f"{dataset}.{col} is {t}")
    day_rows = int((ev["day"].astype("int64") == day).sum())
    ok = int(pe["details"].dropna().map(is_json_object_text).sum())
    return line(name, len(ev), cost, int(ev["input_tokens"].sum()), day_rows, len(pe), ok, problems), schemas


def with_pandas(root, day):
    import pandas as pd
    ev = pd.read_parquet(f"{root}/events")
    pe = pd.read_parquet(f"{root}/policy_evaluations")
    cost = sum((v for v in ev["cost_usd"] if v is not None and v == v), Decimal(0))
    return frame_line("pandas", ev, pe, day, ("category[int32]", "category[int64]"), cost)


def with_fastparquet(root, day):
    import fastparquet
    ev = fastparquet.ParquetFile(files(root, "events"), root=f"{root}/events").to_pandas()
    pe = fastparquet.ParquetFile(files(root, "policy_evaluations"), root=f"{root}/policy_evaluations").to_pandas()
    # fastparquet reads DECIMAL as float64
    cost = sum((Decimal(repr(v)) for v in ev["cost_usd"] if v == v), Decimal(0))
    return frame_line("fastparquet", ev, pe, day, ("int64", "category[int64]"), cost)


READERS = [with_pyarrow, with_duckdb, with_polars, with_pandas, with_fastparquet]


def main():
    cmd, root = sys.argv[1], sys.argv[2]
    day = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    results = [reader(root, day) for reader in READERS]
    if cmd == "totals":
        for row, _ in results:
            print(row)
    elif cmd == "schema":
        names = [r.__name__.removeprefix("with_") for r in READERS]
        for dataset in ("events", "policy_evaluations"):
            print(f"\n{dataset}:\n")
            print("| column | " + " | ".join(names) + " |")
            print("|---|" + "---|" * len(names))
            columns = list(results[0][1][dataset])
            for col in columns:
                print(f"| `{col}` | " + " | ".join(f"`{s[dataset].get(col, '-')}`" for _, s in results) + " |")
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
