"""Missing-data calendar for 50 branches × 2 terminals × 365 days on PostgreSQL.

Run from the project root: `.venv/bin/python bench/etl_calendar.py`
Uses the dedicated database `bench_etl` on 127.0.0.1:5432 (created when missing).

- anchor: the bare SQL query reading (branch, pos, day, status) of every job of the year;
- measured: `etl.selectors.missing_calendar` (that same single query + one for the
  branches + building the 36,500-cell grid with opening dates and closed days).
Measured at two sizes — 10 branches × 73 days (1,460 cells) and the full 50 × 365 (36,500 cells,
25 times as many) — so that its growth shows: both sides' seconds and how many times longer the
large size takes. Reports queries issued, seconds, the ratio anchor/measured and the load average.
Target: the full year under 1 s.
"""

from __future__ import annotations

import os
import random
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from etl_load import ensure_database, setup_django  # noqa: E402

BRANCHES, DAYS, RUNS = 50, 365, 3
SIZES = ((10, 73), (BRANCHES, DAYS))  # (branches, days)


def main() -> None:
    ensure_database()
    setup_django()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from core.models import JobStatus
    from etl.models import Branch, FetchJob

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
    print(f"PostgreSQL {connection.pg_version}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results = [measure_size(branches[:count], start=end - timedelta(days=days - 1), end=end)
               for count, days in SIZES]
    (small_cells, small_anchor, small_took), (large_cells, large_anchor, large_took) = results
    print(f"growth: {large_cells / small_cells:.0f}x the cells -> anchor {large_anchor / small_anchor:.1f}x, "
          f"missing_calendar {large_took / small_took:.1f}x the time")
    print(f"full year under 1 s: {'yes' if large_took < 1 else 'NO'}; "
          f"load average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def measure_size(branches: list, *, start: date, end: date) -> tuple[int, float, float]:
    """(cells, anchor seconds, measured seconds) of the calendar of `branches` from `start` to `end`."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from etl.models import Branch, FetchJob
    from etl.selectors import missing_calendar

    days = (end - start).days + 1
    cells = len(branches) * 2 * days
    jobs = FetchJob.objects.filter(branch__in=branches, work_date__gte=start, work_date__lte=end).count()
    print(f"\ncalendar: {len(branches)} branches × 2 POS × {days} days = {cells} cells, {jobs} jobs in range")
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
    print(f"ratio anchor/measured: {anchor / took:.2f}")
    return cells, anchor, took


if __name__ == "__main__":
    main()
