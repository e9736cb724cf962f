"""Analyzer benchmark: processing a 1 GB CSV upload, and answering an aggregate question afterwards.

Run from the project root: `.venv/bin/python bench/analyzer_upload.py [--size-mb 1024]`.

Figures (each phase in its own child process so peak RSS is per phase):
  anchor   DuckDB alone: count + SUMMARIZE of the CSV (same threads/memory limit)
  ingest   analyzer.ingest.ingest(): sniff, validate, load into a DuckDB file, profile, 500-row preview
  ratio    ingest ÷ anchor (target ≤ 1.5), peak RSS of the ingest process (target < 1.5 GB)
  query    a typical aggregate over the CSV (before), a Parquet copy, and the session's DuckDB file (after)
  answer   the built-in analyst answering "sum of qty by symbol" end to end (plan, query, chart, validation)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
DATA_DIR = ROOT / "var" / "bench_analyzer"


def make_csv(path: Path, size_mb: int) -> None:
    import duckdb

    rows_per_mb = 18_700  # ≈ 56 bytes per row
    rows = size_mb * rows_per_mb
    tmp = path.with_suffix(".part")
    con = duckdb.connect()
    con.execute(f"""
        COPY (
          SELECT range AS trade_id,
                 TIMESTAMP '2023-01-01' + INTERVAL (range * 2) SECOND AS ts,
                 'SYM' || lpad(CAST(hash(range) % 200 AS VARCHAR), 3, '0') AS symbol,
                 CASE WHEN hash(range + 7) % 2 = 0 THEN 'buy' ELSE 'sell' END AS side,
                 1 + hash(range + 11) % 500 AS qty,
                 round(50 + (hash(range + 13) % 100000) / 100.0, 2) AS price,
                 'VENUE' || (hash(range + 17) % 8) AS venue
          FROM range({rows})
        ) TO '{tmp}' (FORMAT csv, HEADER)
    """)
    con.close()
    tmp.rename(path)


def child(code: str) -> dict:
    """Run `code` in a fresh Python process; it prints one JSON line. Adds the child's peak RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    import re

    result = json.loads(re.findall(r"RESULT (\{.*\})", out.stdout)[-1])
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result["peak_rss_mb"] = max(after, before) / 1024  # ru_maxrss is KiB on Linux; max over children so far
    result["own_peak_rss_mb"] = result.get("self_rss_mb")
    return result


PRELUDE = """
import json, os, resource, sys, time
sys.path.insert(0, {root!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django; django.setup()
from analyzer import conf
def rss(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

ANCHOR = PRELUDE + """
import duckdb
con = duckdb.connect(config={{"threads": conf.DUCKDB_THREADS, "memory_limit": conf.INGEST_MEMORY_LIMIT}})
con.execute("SET enable_progress_bar = false")
t = time.monotonic()
n = con.execute("SELECT count(*) FROM read_csv({csv!r})").fetchone()[0]
s = con.execute("SUMMARIZE SELECT * FROM read_csv({csv!r})").fetchall()
print("RESULT " + json.dumps({{"seconds": time.monotonic() - t, "rows": n, "self_rss_mb": rss()}}))
"""

INGEST = PRELUDE + """
from analyzer.ingest import ingest
t = time.monotonic()
r = ingest(src={csv!r}, filename="trades.csv", data_dst={datafile!r})
elapsed = time.monotonic() - t
open({datafile!r} + ".json", "w").write(json.dumps({{"columns": r.columns, "profile": r.profile, "rows": r.row_count}}))
print("RESULT " + json.dumps({{"seconds": elapsed, "rows": r.row_count, "columns": len(r.columns),
                  "rejected": r.detection.get("rejected_rows"), "self_rss_mb": rss()}}))
"""

QUERY = PRELUDE + """
import duckdb
from analyzer import duck
sql = "SELECT symbol, sum(qty) AS sum_qty FROM {{src}} GROUP BY 1 ORDER BY 2 DESC"
con = duckdb.connect(config={{"threads": conf.DUCKDB_THREADS, "memory_limit": conf.DUCKDB_MEMORY_LIMIT}})
con.execute("SET enable_progress_bar = false")
t = time.monotonic(); con.execute(sql.format(src="read_csv({csv!r})")).fetchall(); csv_s = time.monotonic() - t
con.execute("COPY (SELECT * FROM read_csv({csv!r})) TO '{csv}.parquet' (FORMAT parquet)")
t = time.monotonic(); con.execute(sql.format(src="read_parquet('{csv}.parquet')")).fetchall(); pq_s = time.monotonic() - t
os.unlink("{csv}.parquet")
t = time.monotonic(); duck.run_query(data_path={datafile!r}, sql=sql.format(src="data")); db_s = time.monotonic() - t
print("RESULT " + json.dumps({{"csv_seconds": csv_s, "parquet_seconds": pq_s, "duckdb_seconds": db_s,
                              "self_rss_mb": rss()}}))
"""

ANSWER = PRELUDE + """
from analyzer.agent.builtin import BuiltinProvider
from analyzer.agent.context import DataContext
from analyzer.agent.loop import AgentLoop
info = json.load(open({datafile!r} + ".json"))
ctx = DataContext(filename="trades.csv", data_path={datafile!r}, row_count=info["rows"], columns=info["columns"],
                  profile=info["profile"],
                  sample_rows=[], detection={{}})
class Sink:
    events = []
    def emit(self, kind, data, rows_kept=None): self.events.append(kind)
    def should_stop(self): return False
sink = Sink()
t = time.monotonic()
loop = AgentLoop(provider=BuiltinProvider(context=ctx), context=ctx, sink=sink)
loop.run(messages=[{{"role": "system", "content": ""}}, {{"role": "user", "content": "sum of qty by symbol"}}])
print("RESULT " + json.dumps({{"seconds": time.monotonic() - t, "events": sink.events, "self_rss_mb": rss()}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=1024)
    args = parser.parse_args()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    csv = DATA_DIR / f"trades_{args.size_mb}mb.csv"
    datafile = DATA_DIR / f"trades_{args.size_mb}mb.duckdb"
    if not csv.exists():
        print(f"generating {csv} …", flush=True)
        make_csv(csv, args.size_mb)
    size_mb = csv.stat().st_size / 1024 / 1024
    print(f"file: {csv.name}, {size_mb:,.0f} MB")
    fmt = {"root": str(ROOT), "csv": str(csv), "datafile": str(datafile)}
    anchor = child(ANCHOR.format(**fmt))
    print(f"anchor  DuckDB count + SUMMARIZE of the CSV: {anchor['seconds']:.2f} s "
          f"({anchor['rows']:,} rows, peak RSS {anchor['self_rss_mb']:.0f} MB)")
    ingest = child(INGEST.format(**fmt))
    ratio = ingest["seconds"] / anchor["seconds"]
    print(f"ingest  validate + load into DuckDB file + profile + preview: {ingest['seconds']:.2f} s "
          f"({ingest['rows']:,} rows × {ingest['columns']} columns, {ingest['rejected']} rejected)")
    print(f"ratio   ingest / anchor = {ratio:.2f}  (target ≤ 1.5)  {'OK' if ratio <= 1.5 else 'OVER'}")
    print(f"memory  ingest process peak RSS = {ingest['self_rss_mb']:.0f} MB  (target < 1536 MB)  "
          f"{'OK' if ingest['self_rss_mb'] < 1536 else 'OVER'}")
    print(f"        DuckDB file size {datafile.stat().st_size / 1024 / 1024:,.0f} MB")
    query = child(QUERY.format(**fmt))
    print(f"query   sum(qty) by symbol — over the CSV: {query['csv_seconds']:.2f} s; over a Parquet copy: "
          f"{query['parquet_seconds']:.2f} s; over the session's DuckDB file (sandboxed, as the analyst runs it): "
          f"{query['duckdb_seconds']:.2f} s; speed-up vs CSV ×{query['csv_seconds'] / query['duckdb_seconds']:.1f}")
    answer = child(ANSWER.format(**fmt))
    print(f"answer  built-in analyst, 'sum of qty by symbol' (query + chart + validation): {answer['seconds']:.2f} s "
          f"(target < 2 s) {'OK' if answer['seconds'] < 2 else 'OVER'}; events {answer['events']}")


if __name__ == "__main__":
    main()
