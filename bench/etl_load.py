"""Parse + load throughput of one POS day of 200k sales lines on PostgreSQL, against a bare COPY.

Run from the project root: `.venv/bin/python bench/etl_load.py`
Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth); uses the
dedicated database `bench_etl`, created here when missing.

- anchor: COPY of the same rows already parsed (the limit of the load path);
- measured: decode + parse both files (rd5000, rd5500) + join on tnsc +
  replace the day's records in one transaction (DELETE + COPY).
Ratio = anchor time / measured time (target ≥ 0.5). Best of 3 runs each.
"""

from __future__ import annotations

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
    from django.db import connection, transaction

    from etl.demo_files import encode, make_day, payments_text, sales_text
    from etl.loading import copy_rows, records_replace
    from etl.models import Branch, FetchJob, Record
    from etl.parsing import combine, effective_config, parse_payments, parse_sales

    day = date(2025, 6, 2)
    user, _ = get_user_model().objects.get_or_create(username="bench-etl")
    branch, _ = Branch.objects.get_or_create(code="BENCH", defaults={"name": "Bench branch"})
    job, _ = FetchJob.objects.get_or_create(owner=user, branch=branch, pos=1, work_date=day)
    Record.objects.filter(job=job).delete()

    data = make_day(rng=random.Random(1), pos=1, work_date=day, lines=LINES)
    sales_raw = encode(sales_text(data.sales, old=True), old=True)
    payments_raw = encode(payments_text(data.payments, old=True, work_date=day), old=True)
    cfg = effective_config(is_new_branch=False, overrides={})
    print(f"day: {LINES} sales lines ({len(sales_raw) / 1e6:.1f} MB), {len(data.payments)} payment lines "
          f"({len(payments_raw) / 1e6:.1f} MB), old dialect (cp1252, ';', decimal comma), PostgreSQL {connection.pg_version}")

    def pipeline() -> int:
        sales = parse_sales(sales_raw, cfg)
        payments = parse_payments(payments_raw, cfg)
        rows = combine(sales, payments)
        assert sales.rejected == 0 and payments.rejected == 0
        _before, written = records_replace(job=job, rows=rows)
        return written

    rows = combine(parse_sales(sales_raw, cfg), parse_payments(payments_raw, cfg))
    key = (job.pk, branch.pk, 1, day)

    def bare_copy() -> int:
        with transaction.atomic():
            Record.objects.filter(job=job).delete()
            copy_rows(key=key, rows=rows)
        return len(rows)

    def best(func) -> float:
        times = []
        for _ in range(RUNS):
            Record.objects.filter(job=job).delete()
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE etl_record") if not connection.in_atomic_block else None
            started = time.perf_counter()
            count = func()
            times.append(time.perf_counter() - started)
            assert count == LINES
        return min(times)

    anchor = best(bare_copy)
    measured = best(pipeline)
    parse_only = min(_timed(lambda: combine(parse_sales(sales_raw, cfg), parse_payments(payments_raw, cfg))) for _ in range(RUNS))
    assert Record.objects.filter(job=job).count() == LINES
    print(f"anchor   bare COPY of parsed rows:      {anchor:6.2f} s  {LINES / anchor:10,.0f} records/s")
    print(f"measured parse + join + DELETE + COPY: {measured:6.2f} s  {LINES / measured:10,.0f} records/s")
    print(f"         (of which parse + join:       {parse_only:6.2f} s)")
    print(f"ratio measured/anchor throughput: {anchor / measured:.2f} (target >= 0.5)")
    Record.objects.filter(job=job).delete()


def _timed(func) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
