"""Analyzer benchmark: processing a 1 GB CSV upload, and answering an aggregate question afterwards.

Run from the project root: `.venv/bin/python bench/analyzer_upload.py [--size-mb 1024]`.

Figures (each phase in its own child process so peak RSS is per phase):
  anchor   a bare DuckDB script doing the job's own steps: every statement the job sent to DuckDB (sniff,
           load into a DuckDB file, checkpoint, profile, preview), recorded while the job ran and replayed
           in a fresh process on a fresh file, with the job's own connection settings; local storage on both sides
  request  the upload request's part: cheap checks, store the bytes (a rename), create the session, queue the job
  process  the background processing job exactly as the worker runs it (analyzer.tasks.processing_run: job
           start, heartbeat, stage events and live progress, sniff, validate, load into a DuckDB file,
           profile, 500-row preview, session update) — on a throwaway SQLite database and media folder
           under var/bench_analyzer/
  ratio    process ÷ anchor (target ≤ 1.1), peak RSS of the processing process (target < 1.5 GB)
  steps    the job's own timings per step (its "timings" event: sniff, load, profile, preview, checkpoint)
           beside the anchor's time for the statements the job sent in that step
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
recorded = json.load(open({sqlfile!r}))
anchor_dir = {anchordir!r}
import shutil
shutil.rmtree(anchor_dir, ignore_errors=True); os.makedirs(anchor_dir)
def local(text):
    for path, mapped in recorded["paths"].items():
        text = text.replace(path, os.path.join(anchor_dir, mapped))
    return text
t = time.monotonic()
statements = 0
steps = {{}}  # seconds per step of the job, from the step each statement was sent in
for connection in recorded["connections"]:
    database = connection["database"]
    s0 = time.monotonic()
    con = duckdb.connect(local(database) if database != ":memory:" else database, config=connection["config"] or {{}})
    for sql, parameters, step in connection["statements"]:
        result = con.execute(local(sql), parameters) if parameters is not None else con.execute(local(sql))
        try:
            result.fetchall()
        except duckdb.InvalidInputException:
            pass  # a statement without a result set
        statements += 1
        now = time.monotonic()
        steps[step] = steps.get(step, 0.0) + now - s0
        s0 = now
    con.close()
    steps[step] = steps.get(step, 0.0) + time.monotonic() - s0  # closing a file database writes it out
print("RESULT " + json.dumps({{"seconds": time.monotonic() - t, "statements": statements, "steps": steps,
                              "self_rss_mb": rss()}}))
"""

# Wraps duckdb.connect in the job's process: every connection and statement is written down (in order, with
# the job's step it was sent in) so the anchor can replay exactly the same work and time it step by step.
# Recording costs one list append per statement.
RECORD = """
import duckdb
_connect = duckdb.connect
_recorded = []
_step = ["sniff"]
from analyzer.services import processing as _processing
_processing_step = _processing.ProcessingProgress.step
def _recording_step(self, name):
    _processing_step(self, name)
    _step[0] = name or "after"
_processing.ProcessingProgress.step = _recording_step
class _Recording:
    def __init__(self, con, log): self._con, self._log = con, log
    def execute(self, sql, parameters=None, *args, **kwargs):
        self._log.append([sql, list(parameters) if parameters is not None else None, _step[0]])
        if parameters is None:
            self._con.execute(sql, *args, **kwargs)
        else:
            self._con.execute(sql, parameters, *args, **kwargs)
        return self._con
    def __enter__(self): return self
    def __exit__(self, *exc): self._con.close()
    def __getattr__(self, name): return getattr(self._con, name)
def _recording_connect(database=":memory:", *args, **kwargs):
    database = str(database)
    entry = {{"database": database, "config": kwargs.get("config"), "statements": []}}
    _recorded.append(entry)
    return _Recording(_connect(database, *args, **kwargs), entry["statements"])
duckdb.connect = _recording_connect
"""

JOB_PRELUDE = """
import os
os.environ["DATABASE_URL"] = "sqlite:///{dbfile}"
os.environ["PLATFORM_MEDIA_ROOT"] = {media!r}
# The generated "1 GB" file is ~1,052 MiB, a little over the default upload limit (1 GiB).
os.environ["ANALYZER_MAX_UPLOAD_BYTES"] = str(4 * 1024 ** 3)
""" + PRELUDE

PROCESS = JOB_PRELUDE + RECORD + """
import shutil
from django.core.files import File
from django.core.management import call_command
from analyzer import services, tasks
from analyzer.models import AnalysisSession, Processing
call_command("migrate", verbosity=0, interactive=False)
from django.contrib.auth import get_user_model
user, _ = get_user_model().objects.get_or_create(username="bench-analyzer")
for old in AnalysisSession.objects.filter(owner=user):
    shutil.rmtree(os.path.join({media!r}, old.storage_dir), ignore_errors=True)
    old.delete()

class StreamedUpload(File):
    # What Django hands the view for a large upload: the bytes already streamed to a temporary file.
    # Here a hard link of the generated CSV, so the benchmark's file stays and nothing is copied.
    def __init__(self, path):
        super().__init__(None, name="trades.csv")
        self.path, self.size = path, os.path.getsize(path)
    def temporary_file_path(self): return self.path

link = os.path.join({media!r}, "upload.tmp")
if os.path.exists(link): os.unlink(link)
os.link({csv!r}, link)
t = time.monotonic()
session = services.session_create_from_upload(owner=user, upload=StreamedUpload(link), auto_analyze=False)
request_s = time.monotonic() - t
t = time.monotonic()
tasks.processing_run(session.processing.pk)  # as the worker does (heartbeat and progress threads included)
elapsed = time.monotonic() - t
# The stored upload is removed once loaded: the anchor reads the same bytes from the bench's CSV.
# The job reads the worker's local copy of the stored upload (a cache path): every CSV path in its
# statements is that copy.
import re
paths = {{path: {csv!r} for entry in _recorded for sql, _, _ in entry["statements"]
         for path in re.findall(r"'(/[^']+[.]csv)'", sql)}}
for entry in _recorded:
    if entry["database"] != ":memory:":
        paths.setdefault(entry["database"], "file%d.duckdb" % len(paths))
json.dump({{"connections": _recorded, "paths": paths}}, open({sqlfile!r}, "w"))
job = Processing.objects.get(pk=session.processing.pk)
session = AnalysisSession.objects.get(pk=session.pk)
assert job.status == "succeeded", job.error
from core.models import JobEvent
stages = list(JobEvent.objects.filter(job_kind=job.kind, job_id=job.pk, kind="stage").order_by("seq")
              .values_list("data__stage", flat=True))
timings = JobEvent.objects.get(job_kind=job.kind, job_id=job.pk, kind="timings").data
datafile = os.path.join({media!r}, session.data_name)
open({infofile!r}, "w").write(json.dumps({{"columns": session.columns, "profile": session.profile,
                                          "rows": session.row_count, "datafile": datafile}}))
print("RESULT " + json.dumps({{"seconds": elapsed, "request_seconds": request_s, "rows": session.row_count,
                  "columns": session.column_count, "rejected": session.detection.get("rejected_rows"),
                  "stages": stages, "timings": timings, "datafile": datafile,
                  "self_rss_mb": rss()}}))
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
t = time.monotonic(); duck.query_run(data_path={datafile!r}, sql=sql.format(src="data")); db_s = time.monotonic() - t
print("RESULT " + json.dumps({{"csv_seconds": csv_s, "parquet_seconds": pq_s, "duckdb_seconds": db_s,
                              "self_rss_mb": rss()}}))
"""

ANSWER = PRELUDE + """
from analyzer.agent.builtin import BuiltinProvider
from analyzer.agent.context import DataContext
from analyzer.agent.loop import AgentLoop
info = json.load(open({infofile!r}))
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
    media = DATA_DIR / "media"
    media.mkdir(exist_ok=True)
    dbfile = DATA_DIR / "bench.sqlite3"
    for stale in (dbfile, dbfile.with_name(dbfile.name + "-wal"), dbfile.with_name(dbfile.name + "-shm")):
        stale.unlink(missing_ok=True)  # a throwaway database: made afresh by the first run's migrate
    infofile = DATA_DIR / f"trades_{args.size_mb}mb.json"
    if not csv.exists():
        print(f"generating {csv} …", flush=True)
        make_csv(csv, args.size_mb)
    size_mb = csv.stat().st_size / 1024 / 1024
    print(f"file: {csv.name}, {size_mb:,.0f} MB")
    fmt = {"root": str(ROOT), "csv": str(csv), "media": str(media), "dbfile": str(dbfile),
           "infofile": str(infofile), "sqlfile": str(DATA_DIR / "job_statements.json"),
           "anchordir": str(DATA_DIR / "anchor")}
    print(f"load average {os.getloadavg()[0]:.2f}")
    job = child(PROCESS.format(**fmt))
    anchor = child(ANCHOR.format(**fmt))
    again = child(PROCESS.format(**fmt))  # best of 2 on both sides, interleaved
    latest_datafile = again["datafile"]  # each run removes the bench user's earlier sessions and their files
    if again["seconds"] < job["seconds"]:
        job = again
    anchor2 = child(ANCHOR.format(**fmt))
    if anchor2["seconds"] < anchor["seconds"]:
        anchor = anchor2
    print(f"anchor  bare DuckDB replaying the job's {anchor['statements']} statements on a fresh file: "
          f"{anchor['seconds']:.2f} s (peak RSS {anchor['self_rss_mb']:.0f} MB)")
    datafile = Path(latest_datafile)
    fmt["datafile"] = str(datafile)
    ratio = job["seconds"] / anchor["seconds"]
    print(f"request upload request (checks, store by rename, session + job queued): {job['request_seconds'] * 1000:.0f} ms")
    print(f"process background job (validate + load into DuckDB file + profile + preview, progress streamed): "
          f"{job['seconds']:.2f} s ({job['rows']:,} rows × {job['columns']} columns, {job['rejected']} rejected; "
          f"stages {job['stages']})")
    print(f"ratio   process / anchor = {ratio:.2f}  (target ≤ 1.1)  {'OK' if ratio <= 1.1 else 'OVER'}")
    # The job's own timings (its "timings" event) beside the anchor's time for the statements of each step.
    ours, theirs = job["timings"]["seconds"], anchor["steps"]
    print("steps   " + "; ".join(f"{step} {ours.get(step, 0):.2f} s vs {theirs.get(step, 0):.2f} s"
                                 for step in ("sniff", "load", "profile", "preview", "checkpoint")) +
          f"; outside the steps (job start and end, session update): "
          f"{job['seconds'] - sum(ours.values()):.2f} s vs {theirs.get('after', 0):.2f} s")
    print(f"memory  processing (worker) process peak RSS = {job['self_rss_mb']:.0f} MB  (target < 1536 MB)  "
          f"{'OK' if job['self_rss_mb'] < 1536 else 'OVER'}")
    print(f"        DuckDB file size {datafile.stat().st_size / 1024 / 1024:,.0f} MB")
    query = child(QUERY.format(**fmt))
    print(f"query   sum(qty) by symbol — over the CSV: {query['csv_seconds']:.2f} s; over a Parquet copy: "
          f"{query['parquet_seconds']:.2f} s; over the session's DuckDB file (sandboxed, as the analyst runs it): "
          f"{query['duckdb_seconds']:.2f} s; speed-up vs CSV ×{query['csv_seconds'] / query['duckdb_seconds']:.1f}")
    answer = child(ANSWER.format(**fmt))
    print(f"answer  built-in analyst, 'sum of qty by symbol' (query + chart + validation): {answer['seconds']:.2f} s "
          f"(target < 2 s) {'OK' if answer['seconds'] < 2 else 'OVER'}; events {answer['events']}")
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
