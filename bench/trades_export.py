"""Trade export speed and memory, printed as ratios against anchors measured in the same run.

    .venv/bin/python bench/trades_export.py                      # PostgreSQL, 5 M trades
    .venv/bin/python bench/trades_export.py --rows 20000000      # grow the table to 20 M, run again
    .venv/bin/python bench/trades_export.py --sqlite --rows 2000000

PostgreSQL: database `bench_trades` on 127.0.0.1:5432 (user postgres, trust auth), created here.
SQLite: var/bench_trades.sqlite3. The table is generated once with `generate_trades` and reused.

The workload: a filtered export (2 of several exchanges, a price range, a size range, a date
range, 2 expressions) to CSV, sorted by time.
  anchor        bare `COPY (the same SELECT) TO STDOUT` into a file (PostgreSQL), or a bare
                sqlite3 cursor + csv.writer (SQLite): the physical limit of the database
  export job    our job, run by `tasks.export_run` in a separate worker-like process; rows/s
                from the job's own started/finished times; its peak RSS. Twice: with one COPY
                stream (TRADES_EXPORT_STREAMS=1) and with the default number of streams
                (concurrent COPYs of disjoint timestamp slices, concatenated)
  old tool      a replica of the old tool (seed, section 5): SQLAlchemy 2 ORM entities of a mapped
                class, the same filters and order, offset/limit chunks of 10,000,000 each loaded
                whole, derived columns computed in SQL, csv.writer (on the first OLD_ROWS rows of
                the same query: a rate; needs `pip install -r requirements/bench.txt`)
  Django ORM    `.iterator(chunk_size=10_000)` (a server-side cursor, which the old tool did not
                have), expressions evaluated per row in Python, csv.writer: a stronger baseline
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_HOST = "postgres://postgres@127.0.0.1:5432/"


def setup_env(args) -> None:
    if args.sqlite:
        os.environ["DATABASE_URL"] = f"sqlite:///{ROOT / 'var' / (args.db_name + '.sqlite3')}"
    else:
        import psycopg

        from psycopg import sql

        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [args.db_name]).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(args.db_name)))
        os.environ["DATABASE_URL"] = PG_HOST + args.db_name
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["PLATFORM_MEDIA_ROOT"] = str(ROOT / "var" / "bench_media")
    os.environ["TRADES_EXPORT_KEEP_USERS"] = "50"
    import django

    django.setup()


def ensure_data(rows: int, tickers: int, days: int) -> int:
    from django.core.management import call_command

    from trades.loading import trades_generate
    from trades.models import Trade

    call_command("migrate", verbosity=0)
    have = Trade.objects.count()
    if have < rows:
        missing = rows - have
        print(f"generating {missing:,} trades (table has {have:,}) ...", flush=True)
        started = time.perf_counter()
        # New rows continue the history of the same tickers over earlier days.
        trades_generate(tickers=tickers, days=days, rows=missing, seed=have + 1)
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    return Trade.objects.count()


def workload(days: int):
    from trades.loading import trading_days
    from trades.params import ExportParams

    window = trading_days(days=days)
    return ExportParams(
        exchanges=(10, 12),
        pricelow=20.0,
        pricehigh=400.0,
        sizelow=5,
        sizehigh=5000,
        datelow=window[len(window) // 5],
        datehigh=window[-1],
        operations=("PRICE*SIZE", "(PRICE-1)^2/SIZE"),
        sortby="time_desc",
        format="csv",
    )


def anchor_pg(select, path: Path, work_mem: str = "") -> tuple[int, float]:
    """`psql \\copy (SELECT …) TO 'file'`: PostgreSQL's COPY written by its own C client."""
    import shutil

    import psycopg
    from django.db import connection

    with psycopg.connect(**connection.get_connection_params()) as conn:
        query = psycopg.ClientCursor(conn).mogrify(select.sql, select.params)
    settings = connection.settings_dict
    env = dict(os.environ, PGOPTIONS=f"-c work_mem={work_mem}" if work_mem else "")
    if not shutil.which("psql"):
        raise SystemExit("psql is needed for the anchor")
    started = time.perf_counter()
    out = subprocess.run(
        ["psql", "-X", "-q", "-h", settings["HOST"] or "127.0.0.1", "-p", str(settings["PORT"] or 5432),
         "-U", settings["USER"] or "postgres", settings["NAME"], "-c",
         f"\\copy ({query}) TO '{path}' WITH (FORMAT csv)"],
        env=env, capture_output=True, text=True, check=True,
    )
    seconds = time.perf_counter() - started
    with open(path, "rb") as fh:
        rows = sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))
    del out
    return rows, seconds


def anchor_sqlite(select, path: Path) -> tuple[int, float]:
    import sqlite3

    from django.db import connection

    from trades.expressions import safe_pow

    raw = sqlite3.connect(connection.settings_dict["NAME"])
    raw.create_function("trades_pow", 2, safe_pow, deterministic=True)
    rows = 0
    started = time.perf_counter()
    with open(path, "w", newline="", buffering=1 << 20) as out:
        writer = csv.writer(out, lineterminator="\n")
        cur = raw.execute(select.sql.replace("%s", "?"), select.params)
        while batch := cur.fetchmany(50_000):
            writer.writerows(batch)
            rows += len(batch)
    raw.close()
    return rows, time.perf_counter() - started


# VmHWM (peak RSS of this process image) rather than ru_maxrss, which Linux carries over
# from the parent through fork/exec and would report the bench's own size.
WORKER = """
import sys, django
django.setup()
from trades.tasks import export_run
export_run(int(sys.argv[1]))
print([l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")][0])
"""


def run_job(user, params, streams: int | None = None) -> dict:
    from trades import services
    from trades.models import Export

    Export.objects.filter(owner=user, signature=params.signature(owner_id=user.pk)).delete()
    export = services.export_request(user=user, params=params).export
    # The job runs where a worker would: in another process (its peak RSS is what we report).
    env = dict(os.environ)
    if streams is not None:
        env["TRADES_EXPORT_STREAMS"] = str(streams)
    out = subprocess.run([sys.executable, "-c", WORKER, str(export.pk)], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True)
    rss_kb = int(out.stdout.strip().splitlines()[-1])
    export.refresh_from_db()
    if export.status != "succeeded":
        raise SystemExit(f"export failed: {export.error}")
    seconds = (export.finished_at - export.started_at).total_seconds()
    return {"rows": export.rows_written, "seconds": seconds, "rss_mb": rss_kb / 1024, "bytes": export.size_bytes}


def old_approach(params, path: Path, limit: int) -> tuple[int, float]:
    """Django ORM `.iterator()` (server-side cursor), expressions evaluated per row, csv.writer: a stronger
    baseline than the old tool, which had no cursor (see `old_tool_replica`)."""
    from trades import expressions
    from trades.models import Trade
    from trades.params import day_start_ns

    trees = [expressions.parse(text) for text in params.operations]
    qs = Trade.objects.filter(
        exchange_id__in=params.exchanges, price__gte=params.pricelow, price__lte=params.pricehigh,
        size__gte=params.sizelow, size__lte=params.sizehigh,
        participant_timestamp__gte=day_start_ns(params.datelow),
        participant_timestamp__lt=day_start_ns(params.datehigh + timedelta(days=1)),
    ).order_by("-participant_timestamp", "-id")
    if limit > 0:
        qs = qs[:limit]
    rows = 0
    started = time.perf_counter()
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(params.columns)
        for t in qs.iterator(chunk_size=10_000):
            extra = [expressions.evaluate(tree, price=t.price, size=t.size) for tree in trees]
            writer.writerow([t.ticker, t.exchange_id, t.participant_timestamp, t.price, t.size, t.del_t, t.del_p,
                             *extra])
            rows += 1
    return rows, time.perf_counter() - started


def old_tool_replica(params, path: Path, limit: int) -> dict:
    """A replica of the old tool's generation method (seed, section 5).

    SQLAlchemy 2 ORM: a mapped class over the trades table, the request's filters and sort as ORM
    filters, derived columns translated to SQL (here by the app's own `expressions.to_sql`),
    iterated in offset/limit chunks (limit 10,000,000) fetched as ORM entities (the whole chunk
    loaded: `.all()`), rows written with csv.writer. Measured on the first `limit` rows (the first
    chunk is capped at `limit`), so it is a rate, like the Django-ORM line.
    """
    import re

    import sqlalchemy as sa
    from django.db import connection
    from sqlalchemy.orm import DeclarativeBase, Session, mapped_column

    from trades import expressions
    from trades.expressions import safe_pow
    from trades.models import Trade

    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        url = sa.URL.create("postgresql+psycopg", username=settings["USER"] or "postgres",
                            host=settings["HOST"] or "127.0.0.1", port=int(settings["PORT"] or 5432),
                            database=settings["NAME"])
        engine = sa.create_engine(url)
    else:
        engine = sa.create_engine(f"sqlite:///{settings['NAME']}")

        @sa.event.listens_for(engine, "connect")
        def _functions(dbapi_conn, _record):
            dbapi_conn.create_function("trades_pow", 2, safe_pow, deterministic=True)

    class Base(DeclarativeBase):
        pass

    class TradeRow(Base):
        __tablename__ = Trade._meta.db_table
        id = mapped_column(sa.BigInteger, primary_key=True)
        ticker = mapped_column(sa.String(16))
        exchange_id = mapped_column(sa.Integer)
        participant_timestamp = mapped_column(sa.BigInteger)
        price = mapped_column(sa.Float)
        size = mapped_column(sa.BigInteger)
        del_t = mapped_column(sa.BigInteger, nullable=True)
        del_p = mapped_column(sa.Float, nullable=True)

    # Derived columns: the app's expression→SQL, its %s placeholders turned into named binds.
    table = TradeRow.__tablename__
    derived = []
    for i, text in enumerate(params.operations):
        sql, values = expressions.to_sql(expressions.parse(text), vendor=connection.vendor,
                                         price_col=f"{table}.price", size_col=f"{table}.size")
        names = iter(f"e{i}_{j}" for j in range(len(values)))
        sql = re.sub(r"%s", lambda _m: f":{next(names)}", sql)
        clause = sa.text(sql).bindparams(**{f"e{i}_{j}": v for j, v in enumerate(values)})
        derived.append(sa.type_coerce(clause, sa.Float).label(f"e{i}"))

    query = sa.select(TradeRow, *derived).where(
        TradeRow.exchange_id.in_(params.exchanges),
        TradeRow.price >= params.pricelow, TradeRow.price <= params.pricehigh,
        TradeRow.size >= params.sizelow, TradeRow.size <= params.sizehigh,
        TradeRow.participant_timestamp >= params.ts_low_ns, TradeRow.participant_timestamp < params.ts_high_ns,
    ).order_by(TradeRow.participant_timestamp.desc(), TradeRow.id.desc())

    chunk = 10_000_000
    limit = limit if limit > 0 else float("inf")  # --old-rows 0: the whole query, as the old tool ran it
    rows = 0
    rss_before = _rss_mb()
    rss_peak = rss_before
    started = time.perf_counter()
    with Session(engine) as session, open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(params.columns)
        offset = 0
        while rows < limit:
            batch = session.execute(query.offset(offset).limit(int(min(chunk, limit - rows)))).all()
            if not batch:
                break
            rss_peak = max(rss_peak, _rss_mb())
            for t, *extra in batch:
                writer.writerow([t.ticker, t.exchange_id, t.participant_timestamp, t.price, t.size, t.del_t, t.del_p,
                                 *extra])
            rows += len(batch)
            offset += chunk
            del batch
            session.expunge_all()
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"rows": rows, "seconds": seconds, "chunk_mb": rss_peak - rss_before}


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS")) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000, help="trades in the table (generated once)")
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--db-name", default="bench_trades", help="PostgreSQL database (bench_trades*)")
    parser.add_argument("--tickers", type=int, default=12)
    parser.add_argument("--days", type=int, default=40)
    parser.add_argument("--old-rows", type=int, default=300_000, help="0: the old approaches run the whole query")
    parser.add_argument("--old-repeat", type=int, default=2, help="runs of each old approach; best kept")
    parser.add_argument("--no-parquet", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs of anchor and job; best kept")
    args = parser.parse_args()
    setup_env(args)

    from dataclasses import replace

    from django.db import connection

    from accounts.models import User
    from trades import selectors

    total = ensure_data(args.rows, args.tickers, args.days)
    vendor = connection.vendor
    user, _ = User.objects.get_or_create(username="bench_trades", defaults={"email": "bench_trades@example.com"})
    params = workload(args.days)
    select = selectors.export_select(params=params)
    scratch = ROOT / "var" / "bench_tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    print(f"\n== trades export bench: {vendor}, table {total:,} trades ==")
    print(f"workload: exchanges {params.exchanges}, price {params.pricelow}-{params.pricehigh}, size "
          f"{params.sizelow}-{params.sizehigh}, {params.datelow}..{params.datehigh}, {list(params.operations)}, "
          f"sorted {params.sortby}")
    anchor = anchor_pg if vendor == "postgresql" else anchor_sqlite
    anchor(select, scratch / "warmup.csv")  # warm the cache for everyone alike
    # The machine is shared: run the anchors and our job interleaved, keep the best of each.
    from trades import conf

    best: dict[str, tuple] = {}
    for _ in range(max(1, args.repeat)):
        runs = {"anchor": lambda: anchor(select, scratch / "anchor.csv")}
        if vendor == "postgresql":
            runs["anchor_wm"] = lambda: anchor_pg(select, scratch / "anchor2.csv", work_mem=conf.EXPORT_WORK_MEM)
        runs["ours_1"] = lambda: run_job(user, params, streams=1)
        runs["ours"] = lambda: run_job(user, params, streams=conf.EXPORT_STREAMS)
        for key, run in runs.items():
            result = run()
            seconds = result["seconds"] if isinstance(result, dict) else result[1]
            if key not in best or seconds < best[key][0]:
                best[key] = (seconds, result)
    a_secs, (a_rows, _s) = best["anchor"]
    a_rate = a_rows / a_secs
    name = "bare COPY (psql \\copy) → file" if vendor == "postgresql" else "bare sqlite3 cursor + csv.writer"
    print(f"(best of {max(1, args.repeat)} interleaved runs each)")
    print(f"anchor  {name:<38} {a_rows:>10,} rows {a_secs:7.2f} s {a_rate:>12,.0f} rows/s  (1.00)")
    if vendor == "postgresql":
        t_secs, (t_rows, _s) = best["anchor_wm"]
        t_rate = t_rows / t_secs
        print(f"anchor  {'same, with our work_mem ' + conf.EXPORT_WORK_MEM:<38} {t_rows:>10,} rows {t_secs:7.2f} s "
              f"{t_rate:>12,.0f} rows/s  ({t_rate / a_rate:.2f})")
    streams = conf.EXPORT_STREAMS
    job_rates: dict[str, float] = {}
    many = f"export job, CSV, {streams} streams" + ("" if vendor == "postgresql" else " (no effect)")
    for key, label in (("ours_1", "export job, CSV, 1 stream"), ("ours", many)):
        job = best[key][1]
        j_rate = job["rows"] / job["seconds"]
        job_rates[label] = j_rate
        print(f"ours    {label:<38} {job['rows']:>10,} rows {job['seconds']:7.2f} s {j_rate:>12,.0f} rows/s"
              f"  ({j_rate / a_rate:.2f} of the anchor)   worker peak RSS {job['rss_mb']:.0f} MB")
        assert job["rows"] == a_rows, (job["rows"], a_rows)
        if vendor == "postgresql":
            print(f"        {'':<38} {'':>10}      {'':7}   {'':>12}         ({j_rate / t_rate:.2f} of the anchor "
                  "with the same work_mem)")
    j_rate = job_rates[many]

    for n in (1, streams):
        gz = run_job(user, replace(params, format="csv_gz"), streams=n)
        g_rate = gz["rows"] / gz["seconds"]
        label = f"export job, CSV gzip, {n} stream{'s' if n > 1 else ''}"
        print(f"ours    {label:<38} {gz['rows']:>10,} rows {gz['seconds']:7.2f} s {g_rate:>12,.0f} rows/s"
              f"  ({g_rate / a_rate:.2f} of the anchor)   worker peak RSS {gz['rss_mb']:.0f} MB")
    if not args.no_parquet:
        pq = run_job(user, replace(params, format="parquet"))
        p_rate = pq["rows"] / pq["seconds"]
        print(f"ours    {'export job, Parquet':<38} {pq['rows']:>10,} rows {pq['seconds']:7.2f} s "
              f"{p_rate:>12,.0f} rows/s  ({p_rate / a_rate:.2f} of the anchor)   worker peak RSS {pq['rss_mb']:.0f} MB")

    # The old tool's approach, measured on the first --old-rows rows of the same query (a rate);
    # interleaved and best-of like the rest (the machine is shared).
    best_old: dict[str, tuple[float, int]] = {}
    for _ in range(max(1, args.old_repeat)):
        rep = old_tool_replica(params, scratch / "old_sa.csv", args.old_rows)
        dj_rows, dj_secs = old_approach(params, scratch / "old_dj.csv", args.old_rows)
        for key, (r, s) in {"sa": (rep["rows"], rep["seconds"]), "dj": (dj_rows, dj_secs)}.items():
            if key not in best_old or r / s > best_old[key][1] / best_old[key][0]:
                best_old[key] = (s, r)
        best_old["sa_mb"] = (max(best_old.get("sa_mb", (0, 0))[0], rep["chunk_mb"]), 0)
    o_secs, o_rows = best_old["sa"]
    print(f"(old approaches: the first {o_rows:,} rows of the same query, best of {max(1, args.old_repeat)})")
    o_rate = o_rows / o_secs
    print(f"old     {'old tool replica: SQLAlchemy ORM,':<38} {o_rows:>10,} rows {o_secs:7.2f} s "
          f"{o_rate:>12,.0f} rows/s  ({o_rate / a_rate:.3f} of the anchor)")
    for label, rate in job_rates.items():
        print(f"        ours ({label}) is {rate / o_rate:.1f}x faster than the old tool replica")
    print(f"        {'  offset/limit chunks + csv.writer':<38}   chunk of {o_rows:,} entities held "
          f"{best_old['sa_mb'][0]:.0f} MB of RSS (~{best_old['sa_mb'][0] * 10_000_000 / max(1, o_rows) / 1024:.1f} GB "
          "for a full 10,000,000-row chunk)")
    d_secs, d_rows = best_old["dj"]
    d_rate = d_rows / d_secs
    print(f"old     {'Django ORM iterator (a stronger':<38} {d_rows:>10,} rows {d_secs:7.2f} s "
          f"{d_rate:>12,.0f} rows/s  (ours is {j_rate / d_rate:.1f}x faster)")
    print(f"        {'  baseline than the old tool)':<38}")
    for f in scratch.iterdir():
        f.unlink()


if __name__ == "__main__":
    main()
