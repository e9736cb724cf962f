"""Analyzer query budgets: peak memory of a hostile result, and how soon a heavy query stops after its time limit.

Run from the project root: `.venv/bin/python bench/analyzer_query_limits.py [--skip-before]`.

Figures (each query in its own child process, so peak RSS is that query's alone):
  rss     `SELECT repeat('x', 50000000) FROM range(40)`: peak RSS of the process
          - before: the old read (the whole `SELECT * FROM (q) LIMIT n` fetched at once, as the analyzer did)
          - after:  analyzer.duck.query_run (cells cut by DuckDB, pieces, byte budgets) → "Result too large"
          and the ratio after ÷ before; the DuckDB memory limit is the anchor (target: after < 2 × limit)
  stop    for heavy queries with a 1 s limit: how long after the limit query_run raised (median and max of 3)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")  # analyzer.conf reads the settings

HOSTILE = "SELECT repeat('x', 50000000) FROM range(40)"
HEAVY = {
    "cross join": "SELECT count(*) FROM range(100000) a, range(100000) b",
    "repeat strings": "SELECT sum(strlen(repeat(range::VARCHAR, 10000))) FROM range(100000000)",
    "recursive CTE": "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t",
    "recursive strings": "WITH RECURSIVE t(n, s) AS (SELECT 1, 'x' UNION ALL SELECT n + 1, "
                         "right(s || md5(n::VARCHAR), 100) FROM t) SELECT count(*) FROM t",
    "top-N sort": "SELECT range AS i FROM range(10000000000) ORDER BY random() LIMIT 3",
    "wide result": "SELECT range AS i, repeat('q', 1000) AS s FROM range(1000000000)",
}

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from analyzer import conf, duck
mode, data_path, sql, timeout = sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
out = {}
started = time.monotonic()
try:
    if mode == "before":
        con = duck.sandbox_connect(data_path=data_path)
        rows = con.execute(f"SELECT * FROM (\n{sql}\n) AS q LIMIT {conf.RESULT_ROWS_KEPT + 1}").fetchall()
        out["result"] = f"{len(rows)} rows, longest cell {max(len(str(v)) for r in rows for v in r):,} chars"
    else:
        result = duck.query_run(data_path=data_path, sql=sql, timeout=timeout)
        out["result"] = f"{len(result.rows)} rows"
except Exception as exc:
    out["result"] = f"{type(exc).__name__}: {exc}"
out["seconds"] = time.monotonic() - started
out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def child(mode: str, data_path: str, sql: str, timeout: float) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), mode, data_path, sql, str(timeout)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-before", action="store_true", help="do not run the old read (it takes ~4 GB)")
    args = parser.parse_args()
    import duckdb

    from analyzer import conf

    with tempfile.TemporaryDirectory() as tmp:
        data_path = os.path.join(tmp, "data.duckdb")
        con = duckdb.connect(data_path)
        con.execute("CREATE TABLE data AS SELECT range AS a, range * 2 AS b FROM range(1000)")
        con.close()

        print(f"anchor  DuckDB memory_limit {conf.DUCKDB_MEMORY_LIMIT}, threads {conf.DUCKDB_THREADS}")
        after = child("after", data_path, HOSTILE, conf.QUERY_TIMEOUT_SECONDS)
        if not args.skip_before:
            before = child("before", data_path, HOSTILE, conf.QUERY_TIMEOUT_SECONDS)
            print(f"rss     before: peak {before['rss_mb']:,.0f} MB in {before['seconds']:.2f} s ({before['result']})")
        print(f"rss     after:  peak {after['rss_mb']:,.0f} MB in {after['seconds']:.2f} s ({after['result'][:90]})")
        if not args.skip_before:
            print(f"rss     after ÷ before = {after['rss_mb'] / before['rss_mb']:.3f}")

        limit = 1.0
        for name, sql in HEAVY.items():
            late = []
            for _ in range(3):
                out = child("after", data_path, sql, limit)
                late.append(out["seconds"] - limit)
            print(f"stop    {name:18s} limit {limit:g} s: stopped {statistics.median(late):+.2f} s after it "
                  f"(max {max(late):+.2f} s), peak {out['rss_mb']:,.0f} MB — {out['result'][:60]}")


if __name__ == "__main__":
    main()
