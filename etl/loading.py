"""Replacing one branch × POS × day of records in a single transaction.

PostgreSQL gets COPY (the bulk path the benchmark measures); other databases
get batched INSERTs. Either way the old rows disappear and the new ones appear
in one commit, so readers never see half a day.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.db import connection, transaction

from etl import conf
from etl.models import Record

# Order of the values of a combined row after the job's four key columns.
ROW_FIELDS = (
    "line_no", "tnsc", "sale_date", "sale_time", "item_code", "department", "quantity", "amount", "payment_method",
)
KEY_FIELDS = ("job_id", "branch_id", "pos", "work_date")


def records_copy_sql() -> str:
    quote = connection.ops.quote_name
    names = ("job", "branch", "pos", "work_date") + ROW_FIELDS
    columns = ", ".join(quote(Record._meta.get_field(name).column) for name in names)
    return f"COPY {quote(Record._meta.db_table)} ({columns}) FROM STDIN"


def records_copy(*, key: tuple, rows: Sequence[tuple]) -> None:
    """COPY rows into the records table (PostgreSQL only), inside the caller's transaction."""
    with connection.cursor() as cursor:
        with cursor.cursor.copy(records_copy_sql()) as copy:
            write = copy.write_row
            for row in rows:
                write(key + row)


def _insert_rows(*, key: tuple, rows: Sequence[tuple]) -> None:
    job_id, branch_id, pos, work_date = key
    batch: list[Record] = []
    for row in rows:
        batch.append(Record(job_id=job_id, branch_id=branch_id, pos=pos, work_date=work_date, **dict(zip(ROW_FIELDS, row))))
        if len(batch) >= conf.BULK_BATCH_SIZE:
            Record.objects.bulk_create(batch)
            batch = []
    if batch:
        Record.objects.bulk_create(batch)


@transaction.atomic
def records_replace(*, job, rows: Sequence[tuple], before_write: Callable[[], None] | None = None) -> tuple[int, int]:
    """Delete the day's records and insert `rows`; returns (records before, records written).

    `before_write` runs inside the transaction before anything changes (the
    pipeline's last cancellation check), so a cancel leaves the old rows.
    """
    if before_write is not None:
        before_write()
    day = Record.objects.filter(branch_id=job.branch_id, pos=job.pos, work_date=job.work_date)
    before, _ = day.delete()
    key = (job.pk, job.branch_id, job.pos, job.work_date)
    if connection.vendor == "postgresql":
        records_copy(key=key, rows=rows)
    else:
        _insert_rows(key=key, rows=rows)
    return before, len(rows)
