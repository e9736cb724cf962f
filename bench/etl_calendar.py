"""Missing-data calendar for 50 branches × 2 terminals × 365 days on PostgreSQL.

Run from the project root: `.venv/bin/python bench/etl_calendar.py`
Uses the dedicated database `bench_etl` on 127.0.0.1:5432 (created when missing).

- anchor: the bare SQL query reading (branch, pos, day, status) of every job of the year;
- measured: `etl.selectors.missing_calendar` (that same single query + one for the
  branches + building the 36,500-cell grid with opening dates and closed days).
Reports queries issued, seconds, and the ratio anchor/measured. Target: under 1 s.
"""

from __future__ import annotations

import random
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from etl_load import ensure_database, setup_django  # noqa: E402

BRANCHES, DAYS, RUNS = 50, 365, 3


def main() -> None:
    ensure_database()
    setup_django()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from core.models import JobStatus
    from etl.models import Branch, FetchJob
    from etl.selectors import missing_calendar

    end = date(2025, 12, 31)
    start = end - timedelta(days=DAYS - 1)
    user, _ = get_user_model().objects.get_or_create(username="bench-etl")
    codes = [f"CAL{i:02d}" for i in range(BRANCHES)]
    if Branch.objects.filter(code__in=codes).count() < BRANCHES:
        rng = random.Random(3)
        for code in codes:
            Branch.objects.get_or_create(code=code, defaults={
                "name": code, "closed_weekdays": [6] if rng.random() < 0.3 else [],
                "opened_on": start + timedelta(days=rng.randint(0, 60)) if rng.random() < 0.2 else None,
                "closed_dates": ["2025-12-25", "2025-01-01"]})
    branches = list(Branch.objects.filter(code__in=codes).order_by("code"))
    if FetchJob.objects.filter(branch__in=branches).count() < BRANCHES * 2 * DAYS * 0.8:
        FetchJob.objects.filter(branch__in=branches).delete()
        rng = random.Random(4)
        statuses = [JobStatus.SUCCEEDED] * 90 + [JobStatus.FAILED] * 3 + [JobStatus.RUNNING] + [JobStatus.CANCELLED]
        batch = []
        for branch in branches:
            for pos in (1, 2):
                for offset in range(DAYS):
                    if rng.random() < 0.05:
                        continue  # never fetched: missing
                    batch.append(FetchJob(owner=user, branch=branch, pos=pos, work_date=start + timedelta(days=offset),
                                          status=rng.choice(statuses)))
        FetchJob.objects.bulk_create(batch, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE etl_fetchjob")
    jobs = FetchJob.objects.filter(branch__in=branches, work_date__gte=start, work_date__lte=end).count()
    print(f"calendar: {BRANCHES} branches × 2 POS × {DAYS} days = {BRANCHES * 2 * DAYS} cells, {jobs} jobs in range, "
          f"PostgreSQL {connection.pg_version}")

    ids = [b.pk for b in branches]

    def bare() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, branch_id, pos, work_date, status FROM etl_fetchjob "
                "WHERE work_date >= %s AND work_date <= %s AND branch_id = ANY(%s)", [start, end, ids])
            return len(cursor.fetchall())

    def measured() -> dict:
        return missing_calendar(start=start, end=end, branches=list(Branch.objects.filter(pk__in=ids)))

    def best(func) -> float:
        times = []
        for _ in range(RUNS):
            started = time.perf_counter()
            func()
            times.append(time.perf_counter() - started)
        return min(times)

    anchor = best(bare)
    with CaptureQueriesContext(connection) as queries:
        calendar = measured()
    grid_queries = [q for q in queries.captured_queries if "etl_fetchjob" in q["sql"]]
    took = best(measured)
    print(f"anchor   bare job-status query:        {anchor:6.3f} s")
    print(f"measured missing_calendar (full grid): {took:6.3f} s  ({len(queries)} queries: "
          f"{len(grid_queries)} on jobs, {len(queries) - len(grid_queries)} on branches)")
    print(f"totals: {calendar['totals']}")
    print(f"ratio anchor/measured: {anchor / took:.2f}; under 1 s: {'yes' if took < 1 else 'NO'}")


if __name__ == "__main__":
    main()
