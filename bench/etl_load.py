"""Parse + load throughput of one POS day of 200k sales lines on PostgreSQL, against a bare COPY.

Run from the project root: `.venv/bin/python bench/etl_load.py`
Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth); uses the
dedicated database `bench_etl`, created here when missing.

One definition, the same work on both sides but the parse:
- anchor: the day's records replaced in one transaction (DELETE + COPY, `records_replace`, the job's
  own load step) from the rows already parsed — the bare COPY, the limit of the load path;
- measured: the same `records_replace` after decoding and parsing both files (rd5000, rd5500) and
  joining them on tnsc, exactly as the fetch job does after its download.
Both start from the same empty, vacuumed table, with the cyclic GC paused as the fetch job pauses it.
Ratio = anchor time / measured time (target ≥ 0.8), runs interleaved, best of 3 each; the parse alone
and the split inside the best measured run are printed too. Prints the load average before and after
(the machine may be shared).
"""

from __future__ import annotations

import gc
import os
import random
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "bench_etl"
PG = "postgres://postgres@127.0.0.1:5432"
LINES = 200_000
RUNS = 3


def ensure_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone():
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def setup_django() -> None:
    os.environ["DATABASE_URL"] = f"{PG}/{DB_NAME}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def main() -> None:
    ensure_database()
    setup_django()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from etl.demo_files import encode, make_day, payments_text, sales_text
    from etl.loading import records_replace
    from etl.models import Branch, FetchJob, Record
    from etl.parsing import combine, effective_config, parse_payments, parse_sales
    from etl.pipeline import gc_paused

    day = date(2025, 6, 2)
    user, _ = get_user_model().objects.get_or_create(username="bench-etl")
    branch, _ = Branch.objects.get_or_create(code="BENCH", defaults={"name": "Bench branch"})
    job, _ = FetchJob.objects.get_or_create(owner=user, branch=branch, pos=1, work_date=day)
    Record.objects.filter(job=job).delete()

    data = make_day(rng=random.Random(1), pos=1, work_date=day, lines=LINES)
    sales_raw = encode(sales_text(data.sales, old=True), old=True)
    payments_raw = encode(payments_text(data.payments, old=True, work_date=day), old=True)
    cfg = effective_config(is_new_branch=False, overrides={})
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"day: {LINES} sales lines ({len(sales_raw) / 1e6:.1f} MB), {len(data.payments)} payment lines "
          f"({len(payments_raw) / 1e6:.1f} MB), old dialect (cp1252, ';', decimal comma), PostgreSQL {connection.pg_version}")

    def pipeline() -> int:
        # Exactly what the fetch job does after download (etl/pipeline.py steps 5-6).
        with gc_paused():
            started = time.perf_counter()
            sales = parse_sales(sales_raw, cfg)
            payments = parse_payments(payments_raw, cfg)
            rows = combine(sales, payments)
            assert sales.rejected == 0 and payments.rejected == 0
            parsed = time.perf_counter()
            _before, written = records_replace(job=job, rows=rows)
            split.append((parsed - started, time.perf_counter() - parsed))
        return written

    split: list[tuple[float, float]] = []

    rows = combine(parse_sales(sales_raw, cfg), parse_payments(payments_raw, cfg))

    def bare_copy() -> int:
        with gc_paused():
            _before, written = records_replace(job=job, rows=rows)
        return written

    def parse_only() -> int:
        with gc_paused():
            return len(combine(parse_sales(sales_raw, cfg), parse_payments(payments_raw, cfg)))

    # Interleaved runs (the machine is shared; load changes over time), best of RUNS each.
    timings: dict[str, list[float]] = {"anchor": [], "measured": [], "parse": []}
    for _ in range(RUNS):
        for name, func in (("anchor", bare_copy), ("measured", pipeline), ("parse", parse_only)):
            Record.objects.filter(job=job).delete()
            with connection.cursor() as cursor:  # every run starts from a clean table
                cursor.execute("VACUUM etl_record")
            gc.collect()
            started = time.perf_counter()
            assert func() == LINES
            timings[name].append(time.perf_counter() - started)
    anchor, measured, parse_time = (min(timings[k]) for k in ("anchor", "measured", "parse"))
    print(f"anchor   bare COPY of parsed rows:      {anchor:6.2f} s  {LINES / anchor:10,.0f} records/s")
    print(f"measured parse + join + DELETE + COPY: {measured:6.2f} s  {LINES / measured:10,.0f} records/s")
    print(f"         (of which parse + join:       {parse_time:6.2f} s)")
    inner = min(split, key=sum)
    print(f"         (inside the best measured run: parse + join {inner[0]:.2f} s, DELETE + COPY {inner[1]:.2f} s)")
    print(f"ratio measured/anchor throughput: {anchor / measured:.2f} (target >= 0.8)")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    Record.objects.filter(job=job).delete()


if __name__ == "__main__":
    main()
