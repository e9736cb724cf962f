r"""Trade export speed and memory, printed as ratios against anchors measured in the same run.

    .venv/bin/python bench/trades_export.py                      # PostgreSQL, 5 M trades
    .venv/bin/python bench/trades_export.py --rows 20000000      # grow the table to 20 M, run again
    .venv/bin/python bench/trades_export.py --sqlite --rows 2000000

PostgreSQL: database `bench_trades` on 127.0.0.1:5432 (user postgres, trust auth), created here.
SQLite: var/bench_trades.sqlite3. The table is generated once with `generate_trades` and reused.

The workload: a filtered export (2 of several exchanges, a price range, a size range, a date
range, 2 expressions), sorted by time. Both sides are timed the same way, with no process start-up
on either side: our job by its own started/finished times (the worker process is already up);
every psql anchor from the start of psql to the end of its output minus psql's own start-up
(start, connect, log in, exit: `psql -c 'SELECT 1'` run the same way, best of 5), which is
measured and printed.
  CSV, 1 stream   bare `psql \copy (the same SELECT) TO STDOUT > file` (PostgreSQL), also with
                  our work_mem; or a bare sqlite3 cursor + csv.writer (SQLite)
  CSV, N streams  N concurrent bare psql COPYs of the same disjoint time slices the job uses
                  (`trades.selectors.export_slice_bounds`, with our session settings), each to a
                  part file, the parts joined in order into one file
  CSV gzip        the same, each stream piped through `gzip -1` (concatenated gzip members)
  Parquet         `psql \copy … TO STDOUT` piped into DuckDB (in this process: read_csv of the pipe
                  → COPY TO parquet, zstd at our level); the two file sizes compared
  export job      our job, run by `tasks.export_run` in a separate worker-like process; its peak
                  RSS (VmHWM). The bench has a queue of its own (Q_CLUSTER_NAME, set before
                  django.setup) and purges only that queue at the end
  old tool        a replica of the old tool (seed, section 5): SQLAlchemy 2 ORM entities of a mapped
                  class, the same filters and order, offset/limit chunks of 10,000,000 each loaded
                  whole, derived columns computed in SQL, csv.writer (on the first OLD_ROWS rows of
                  the same query: a rate; needs `pip install -r requirements/bench.txt`)
  Django ORM      `.iterator(chunk_size=10_000)` (a server-side cursor, which the old tool did not
                  have), expressions evaluated per row in Python, csv.writer: a stronger baseline
Prints the load average at the start and the end, and every output's size.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
import shlex
import shutil
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
    # A queue of its own (the worker processes inherit it): the bench purges only what it queued.
    os.environ["Q_CLUSTER_NAME"] = f"bench-trades-{os.getpid()}"
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


def _psql_command(options: str = "") -> tuple[list[str], dict]:
    from django.db import connection

    if not shutil.which("psql"):
        raise SystemExit("psql is needed for the anchors")
    settings = connection.settings_dict
    env = dict(os.environ, PGOPTIONS=options)
    return ["psql", "-X", "-q", "-h", settings["HOST"] or "127.0.0.1", "-p", str(settings["PORT"] or 5432),
            "-U", settings["USER"] or "postgres", settings["NAME"]], env


def _mogrify(select) -> str:
    import psycopg
    from django.db import connection

    with psycopg.connect(**connection.get_connection_params()) as conn:
        return psycopg.ClientCursor(conn).mogrify(select.sql, select.params)


def psql_startup(streams: int) -> float:
    """`streams` concurrent `psql -c 'SELECT 1'` (start, connect, log in, exit): best of 5."""
    base, env = _psql_command()
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        procs = [subprocess.Popen(base + ["-c", "SELECT 1"], env=env, stdout=subprocess.DEVNULL) for _ in range(streams)]
        for proc in procs:
            if proc.wait() != 0:
                raise SystemExit("psql failed")
        best = min(best, time.perf_counter() - started)
    return best


def anchor_pg(selects: list, path: Path, *, startup: float, options: str = "", pipe: str = "") -> tuple[int, float]:
    """Concurrent `psql \\copy (slice) TO STDOUT [| pipe] > part`, one per select, the parts joined in
    order into `path`; seconds minus psql's start-up (`startup`, measured the same way)."""
    base, env = _psql_command(options)
    queries = [_mogrify(select) for select in selects]
    parts = [path.with_name(f"{path.name}.part{i}") for i in range(len(queries))]
    started = time.perf_counter()
    procs = []
    for query, part in zip(queries, parts):
        command = shlex.join(base + ["-c", f"\\copy ({query}) TO STDOUT WITH (FORMAT csv)"])
        if pipe:
            command += f" | {pipe}"
        procs.append(subprocess.Popen(["bash", "-o", "pipefail", "-c", f"{command} > {shlex.quote(str(part))}"],
                                      env=env))
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit("the psql anchor failed")
    if len(parts) == 1:
        os.replace(parts[0], path)
    else:
        with open(path, "wb") as out:
            for part in parts:
                with open(part, "rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 20)
                part.unlink()
    seconds = time.perf_counter() - started - startup
    rows = -1
    if not pipe:
        with open(path, "rb") as fh:
            rows = sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))
    return rows, seconds


def anchor_parquet(select, path: Path, *, startup: float, schema) -> tuple[int, float]:
    """`psql \\copy … TO STDOUT` piped into DuckDB (read_csv of the pipe → COPY TO parquet, zstd at our
    level); seconds minus psql's start-up."""
    import duckdb

    from trades.writers.parquet import ZSTD_LEVEL

    base, env = _psql_command()
    query = _mogrify(select)
    duck_types = {"string": "VARCHAR", "int64": "BIGINT", "double": "DOUBLE"}
    columns = ", ".join(f"'{f.name}': '{duck_types[str(f.type)]}'" for f in schema)
    con = duckdb.connect()
    started = time.perf_counter()
    proc = subprocess.Popen(base + ["-c", f"\\copy ({query}) TO STDOUT WITH (FORMAT csv)"], env=env,
                            stdout=subprocess.PIPE)
    con.execute(f"COPY (SELECT * FROM read_csv('/dev/fd/{proc.stdout.fileno()}', header = false, "
                f"columns = {{{columns}}})) TO '{path}' "
                f"(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL {ZSTD_LEVEL})")
    proc.stdout.close()
    if proc.wait() != 0:
        raise SystemExit("the Parquet anchor failed")
    seconds = time.perf_counter() - started - startup
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchone()[0]
    con.close()
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
    def loadavg() -> str:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())

    print(f"load average at start: {loadavg()}")
    from trades import conf
    from trades.writers.parquet import _parquet_schema
    from trades.writers.sliced import SLICE_SETTINGS

    streams = conf.EXPORT_STREAMS
    pq_params = replace(params, format="parquet")
    gz_params = replace(params, format="csv_gz")
    runs: dict = {}
    if vendor == "postgresql":
        startup_1, startup_n = psql_startup(1), psql_startup(streams)
        print(f"psql start-up (measured, subtracted from every psql anchor): {startup_1:.3f} s alone, "
              f"{startup_n:.3f} s for {streams} at once")
        bounds = selectors.export_slice_bounds(params=params, streams=streams)
        slices = [selectors.export_select(params=params, ts_range=r) for r in zip([None, *bounds], [*bounds, None])]
        ours_wm = f"-c work_mem={conf.EXPORT_WORK_MEM}" if conf.EXPORT_WORK_MEM else ""
        slice_options = " ".join([ours_wm] + [f"-c {k}={v}" for k, v in SLICE_SETTINGS.items()]).strip()
        n_startup = startup_n if len(slices) > 1 else startup_1
        anchor_pg([select], scratch / "warmup.csv", startup=startup_1)  # warm the cache for everyone alike
        runs = {
            "csv_anchor": lambda: anchor_pg([select], scratch / "a1.csv", startup=startup_1),
            "csv_anchor_wm": lambda: anchor_pg([select], scratch / "a1wm.csv", startup=startup_1, options=ours_wm),
            "csv_anchor_n": lambda: anchor_pg(slices, scratch / "an.csv", startup=n_startup, options=slice_options),
            "gz_anchor": lambda: anchor_pg([select], scratch / "a1.csv.gz", startup=startup_1, options=ours_wm,
                                           pipe="gzip -1"),
            "gz_anchor_n": lambda: anchor_pg(slices, scratch / "an.csv.gz", startup=n_startup, options=slice_options,
                                             pipe="gzip -1"),
        }
        if not args.no_parquet:
            runs["pq_anchor"] = lambda: anchor_parquet(selectors.export_select(params=pq_params), scratch / "duck.parquet",
                                                       startup=startup_1, schema=_parquet_schema(pq_params))
    else:
        anchor_sqlite(select, scratch / "warmup.csv")
        runs = {"csv_anchor": lambda: anchor_sqlite(select, scratch / "a1.csv")}
    runs.update({
        "csv_1": lambda: run_job(user, params, streams=1),
        "csv_n": lambda: run_job(user, params, streams=streams),
        "gz_1": lambda: run_job(user, gz_params, streams=1),
        "gz_n": lambda: run_job(user, gz_params, streams=streams),
    })
    if not args.no_parquet:
        runs["pq"] = lambda: run_job(user, pq_params)
    files = {"csv_anchor": "a1.csv", "csv_anchor_wm": "a1wm.csv", "csv_anchor_n": "an.csv", "gz_anchor": "a1.csv.gz",
             "gz_anchor_n": "an.csv.gz", "pq_anchor": "duck.parquet"}
    # The machine is shared: every side runs interleaved with the others, the best of each is kept.
    best: dict[str, dict] = {}
    for _ in range(max(1, args.repeat)):
        for key, run in runs.items():
            result = run()
            if not isinstance(result, dict):
                rows, seconds = result
                result = {"rows": rows, "seconds": seconds, "bytes": (scratch / files[key]).stat().st_size}
            if key not in best or result["seconds"] < best[key]["seconds"]:
                best[key] = result
    print(f"(best of {max(1, args.repeat)} interleaved runs each; ratio = our rows/s over the anchor's rows/s)")
    a_rows = best["csv_anchor"]["rows"]

    def line(kind: str, label: str, result: dict, versus: dict | None = None) -> None:
        rate = result["rows"] / result["seconds"]
        text = (f"{kind:<7} {label:<40} {result['rows']:>10,} rows {result['seconds']:7.2f} s {rate:>12,.0f} rows/s "
                f"{result['bytes'] / 1e6:8.1f} MB")
        if versus is not None:
            text += f"  ({rate / (versus['rows'] / versus['seconds']):.2f} of its anchor)"
        if "rss_mb" in result:
            text += f"  worker peak RSS {result['rss_mb']:.0f} MB"
        print(text)

    if vendor == "postgresql":
        line("anchor", "psql \\copy → file, 1 stream", best["csv_anchor"])
        line("anchor", f"  same, our work_mem {conf.EXPORT_WORK_MEM}", best["csv_anchor_wm"])
        line("ours", "export job, CSV, 1 stream", best["csv_1"], best["csv_anchor_wm"])
        line("anchor", f"{len(slices)} concurrent psql \\copy of our slices", best["csv_anchor_n"])
        line("ours", f"export job, CSV, {streams} streams", best["csv_n"], best["csv_anchor_n"])
        for result, key in ((best["gz_anchor"], "gz_anchor"), (best["gz_anchor_n"], "gz_anchor_n")):
            result["rows"] = a_rows  # the same query; counted on the plain CSV
        line("anchor", "psql | gzip -1, 1 stream", best["gz_anchor"])
        line("ours", "export job, CSV gzip, 1 stream", best["gz_1"], best["gz_anchor"])
        line("anchor", f"{len(slices)} concurrent psql | gzip -1 of our slices", best["gz_anchor_n"])
        line("ours", f"export job, CSV gzip, {streams} streams", best["gz_n"], best["gz_anchor_n"])
        if not args.no_parquet:
            line("anchor", "psql | DuckDB → Parquet (zstd, our level)", best["pq_anchor"])
            line("ours", "export job, Parquet", best["pq"], best["pq_anchor"])
            print(f"        Parquet size: ours {best['pq']['bytes']:,} bytes, DuckDB's {best['pq_anchor']['bytes']:,} "
                  f"bytes ({best['pq']['bytes'] / best['pq_anchor']['bytes']:.3f} of DuckDB's)")
    else:
        line("anchor", "bare sqlite3 cursor + csv.writer", best["csv_anchor"])
        line("ours", "export job, CSV", best["csv_1"], best["csv_anchor"])
        line("ours", "export job, CSV gzip (no gzip anchor)", best["gz_1"])
        if not args.no_parquet:
            line("ours", "export job, Parquet (no Parquet anchor)", best["pq"])
    for key in ("csv_1", "csv_n", "gz_1", "gz_n") + (() if args.no_parquet else ("pq",)):
        assert best[key]["rows"] == a_rows, (key, best[key]["rows"], a_rows)
    j_rate = best["csv_n"]["rows"] / best["csv_n"]["seconds"]
    job_rates = {"export job, CSV, 1 stream": best["csv_1"]["rows"] / best["csv_1"]["seconds"],
                 f"export job, CSV, {streams} streams": j_rate}

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
    print(f"old     {'old tool replica: SQLAlchemy ORM,':<40} {o_rows:>10,} rows {o_secs:7.2f} s "
          f"{o_rate:>12,.0f} rows/s")
    for label, rate in job_rates.items():
        print(f"        ours ({label}) is {rate / o_rate:.1f}x faster than the old tool replica")
    print(f"        {'  offset/limit chunks + csv.writer':<40}   its chunk of {o_rows:,} entities held "
          f"{best_old['sa_mb'][0]:.0f} MB of RSS (measured)")
    d_secs, d_rows = best_old["dj"]
    d_rate = d_rows / d_secs
    print(f"old     {'Django ORM iterator (a stronger':<40} {d_rows:>10,} rows {d_secs:7.2f} s "
          f"{d_rate:>12,.0f} rows/s  (ours is {j_rate / d_rate:.1f}x faster)")
    print(f"        {'  baseline than the old tool)':<40}")
    print(f"load average at end: {loadavg()}")
    for f in scratch.iterdir():
        f.unlink()
    # Only this bench's queue (its own cluster name): tasks the runs left queued, nobody else's.
    from django_q.brokers import get_broker

    purged = get_broker().purge_queue()
    print(f"queue {os.environ['Q_CLUSTER_NAME']!r} purged ({purged if purged is not None else 'done'})")


if __name__ == "__main__":
    main()
