"""Bulk writes of trade data: importing flat files and generating synthetic data.

Rows go in through the database's bulk path: COPY FROM STDIN on PostgreSQL,
`executemany` of prepared inserts on SQLite.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
from django.db import connection, transaction

from trades.models import Exchange, LoadedFile, Trade

# Numeric ids of the US-equities trades flat files (SIP participant ids).
US_EXCHANGES = [
    (1, "NYSE American", "AMEX", "XASE"),
    (2, "Nasdaq OMX BX", "BX", "XBOS"),
    (3, "NYSE National", "NSX", "XCIS"),
    (4, "FINRA Alternative Display Facility", "ADF", "FINR"),
    (5, "Unlisted Trading Privileges", "UTP", ""),
    (6, "International Securities Exchange", "ISE", "XISX"),
    (7, "Cboe EDGA", "EDGA", "EDGA"),
    (8, "Cboe EDGX", "EDGX", "EDGX"),
    (9, "NYSE Chicago", "CHX", "XCHI"),
    (10, "New York Stock Exchange", "NYSE", "XNYS"),
    (11, "NYSE Arca", "ARCA", "ARCX"),
    (12, "Nasdaq", "NASDAQ", "XNAS"),
    (13, "Consolidated Tape Association", "CTS", ""),
    (14, "Long-Term Stock Exchange", "LTSE", "LTSE"),
    (15, "Investors Exchange", "IEX", "IEXG"),
    (16, "Cboe Stock Exchange", "CBSX", "CBSX"),
    (17, "Nasdaq Philadelphia Exchange", "PSX", "XPHL"),
    (18, "Cboe BYX", "BYX", "BATY"),
    (19, "Cboe BZX", "BZX", "BATS"),
    (20, "MIAX Pearl", "MIAX", "EPRL"),
    (21, "Members Exchange", "MEMX", "MEMX"),
    (22, "24X National Exchange", "24X", "24SX"),
]

COLUMNS = ["ticker", "exchange_id", "participant_timestamp", "price", "size", "del_t", "del_p"]
FLAT_FILE_COLUMNS = [
    "ticker", "conditions", "correction", "exchange", "id", "participant_timestamp", "price",
    "sequence_number", "sip_timestamp", "size", "tape", "trf_id", "trf_timestamp",
]
TICKER_PATTERN = r"^[A-Z0-9][A-Z0-9.\-]{0,15}$"


def exchanges_ensure(*, ids: list[int] | None = None) -> int:
    """Create the known exchanges (and placeholders for unknown ids); returns how many were created."""
    existing = set(Exchange.objects.values_list("id", flat=True))
    rows = [Exchange(id=i, name=n, acronym=a, mic=m) for i, n, a, m in US_EXCHANGES if i not in existing]
    known = {row[0] for row in US_EXCHANGES}
    for extra in sorted(set(ids or ()) - existing - known):
        rows.append(Exchange(id=int(extra), name=f"Exchange {int(extra)}", acronym=f"X{int(extra)}"))
    Exchange.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def trades_bulk_insert(frame: pd.DataFrame) -> int:
    """Insert a frame with COLUMNS through the bulk path; returns rows inserted."""
    if frame.empty:
        return 0
    frame = frame[COLUMNS]
    table = Trade._meta.db_table
    if connection.vendor == "postgresql":
        buf = io.StringIO()
        frame.to_csv(buf, header=False, index=False)
        data = buf.getvalue().encode()
        with connection.cursor() as wrapper:
            with wrapper.cursor.copy(f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN WITH (FORMAT csv)") as copy:
                for start in range(0, len(data), 1 << 20):
                    copy.write(data[start : start + (1 << 20)])
        return len(frame)
    values = list(
        zip(
            frame["ticker"].tolist(),
            frame["exchange_id"].astype("int64").tolist(),
            frame["participant_timestamp"].astype("int64").tolist(),
            frame["price"].astype("float64").tolist(),
            frame["size"].astype("int64").tolist(),
            [None if pd.isna(v) else int(v) for v in frame["del_t"].tolist()],
            [None if pd.isna(v) else float(v) for v in frame["del_p"].tolist()],
        )
    )
    sql = f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
    with connection.cursor() as cursor:
        cursor.executemany(sql, values)
    return len(values)


def _previous_trades(tickers: list[str], before_ns: int) -> dict[str, tuple[int, float]]:
    """Last stored (timestamp, price) of each ticker before `before_ns`, to chain del_t/del_p across files."""
    result = {}
    for ticker in tickers:
        row = (
            Trade.objects.filter(ticker=ticker, participant_timestamp__lt=before_ns)
            .order_by("-participant_timestamp", "-id")
            .values_list("participant_timestamp", "price")
            .first()
        )
        if row:
            result[ticker] = row
    return result


def add_deltas(frame: pd.DataFrame, previous: dict[str, tuple[int, float]] | None = None) -> pd.DataFrame:
    """Sort by ticker/time and compute del_t (ns) and del_p against the previous trade of the ticker."""
    frame = frame.sort_values(["ticker", "participant_timestamp"], kind="stable").reset_index(drop=True)
    grouped = frame.groupby("ticker", sort=False)
    # Int64 (not int64): a plain diff goes through float64 and loses nanoseconds.
    frame["del_t"] = frame["participant_timestamp"].astype("Int64").groupby(frame["ticker"], sort=False).diff()
    frame["del_p"] = grouped["price"].diff().round(8)
    if previous:
        first = ~frame["ticker"].duplicated()
        for idx in frame.index[first]:
            prev = previous.get(frame.at[idx, "ticker"])
            if prev:
                frame.at[idx, "del_t"] = int(frame.at[idx, "participant_timestamp"]) - int(prev[0])
                frame.at[idx, "del_p"] = round(float(frame.at[idx, "price"]) - float(prev[1]), 8)
    return frame


# --- import of flat files -------------------------------------------------------


@dataclass
class LoadReport:
    name: str
    rows_loaded: int = 0
    rows_bad: int = 0
    skipped: bool = False
    problems: list[str] = field(default_factory=list)


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_frame(path: str) -> pd.DataFrame:
    lower = path.lower()
    if lower.endswith(".parquet") or lower.endswith(".pq"):
        return pd.read_parquet(path, columns=None)
    return pd.read_csv(path, dtype=str, keep_default_na=False, compression="infer")


def _exact_int(column: pd.Series) -> pd.Series:
    """Nanosecond timestamps need all 19 digits: never pass them through float64."""
    if pd.api.types.is_integer_dtype(column):
        return column.astype("Int64")
    text = column.astype(str).str.strip()
    ok = text.str.fullmatch(r"\d{1,19}")
    return text.where(ok, None).astype("Int64")


def _clean(raw: pd.DataFrame, report: LoadReport) -> pd.DataFrame:
    missing = [c for c in ("ticker", "exchange", "participant_timestamp", "price", "size") if c not in raw.columns]
    if missing:
        raise ValueError(f"missing column(s): {', '.join(missing)}")
    frame = pd.DataFrame(
        {
            "ticker": raw["ticker"].astype(str).str.strip().str.upper(),
            "exchange_id": pd.to_numeric(raw["exchange"], errors="coerce"),
            "participant_timestamp": _exact_int(raw["participant_timestamp"]),
            "price": pd.to_numeric(raw["price"], errors="coerce"),
            "size": pd.to_numeric(raw["size"], errors="coerce"),
        }
    )
    good = (
        frame["ticker"].str.match(TICKER_PATTERN)
        & frame["exchange_id"].notna()
        & (frame["exchange_id"] >= 0)
        & (frame["exchange_id"] == frame["exchange_id"].round())
        & frame["participant_timestamp"].notna()
        & (frame["participant_timestamp"] > 0)
        & frame["price"].notna()
        & np.isfinite(frame["price"].fillna(0))
        & (frame["price"] > 0)
        & frame["size"].notna()
        & (frame["size"] >= 0)
        & (frame["size"] == frame["size"].round())
    )
    bad = int((~good).sum())
    if bad:
        report.rows_bad += bad
        for idx in frame.index[~good][:5]:
            report.problems.append(f"row {int(idx) + 2}: unreadable or out-of-range value")
    frame = frame[good].copy()
    frame["exchange_id"] = frame["exchange_id"].astype("int64")
    frame["participant_timestamp"] = frame["participant_timestamp"].astype("int64")
    frame["size"] = frame["size"].astype("int64")
    return frame


def trades_file_load(*, path: str) -> LoadReport:
    """Import one CSV / CSV.gz / Parquet flat file; idempotent by content hash; bad rows are counted."""
    report = LoadReport(name=os.path.basename(path))
    sha = _file_sha256(path)
    if LoadedFile.objects.filter(sha256=sha).exists():
        report.skipped = True
        return report
    frame = _clean(_read_frame(path), report)
    with transaction.atomic():
        exchanges_ensure(ids=frame["exchange_id"].unique().tolist())
        if not frame.empty:
            previous = _previous_trades(
                sorted(frame["ticker"].unique().tolist()), int(frame["participant_timestamp"].min())
            )
            frame = add_deltas(frame, previous)
            for start in range(0, len(frame), 500_000):
                report.rows_loaded += trades_bulk_insert(frame.iloc[start : start + 500_000])
        LoadedFile.objects.create(sha256=sha, name=report.name, rows_loaded=report.rows_loaded, rows_bad=report.rows_bad)
    return report


# --- synthetic data -------------------------------------------------------------

DEFAULT_TICKERS = [
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AMD", "NFLX", "INTC", "JPM", "BAC", "XOM",
    "KO", "PEP", "WMT", "DIS", "CSCO", "ORCL", "IBM", "SPY", "QQQ", "IWM", "T", "F",
]
# Rough share of volume by exchange id (NASDAQ, NYSE, ARCA, EDGX, BZX, IEX, MEMX, ADF...).
EXCHANGE_WEIGHTS = {12: 0.2, 10: 0.12, 11: 0.12, 8: 0.1, 19: 0.09, 15: 0.06, 21: 0.06, 4: 0.15, 7: 0.03, 18: 0.03,
                    17: 0.02, 2: 0.02}
SESSION_START_NS = (14 * 3600 + 30 * 60) * 1_000_000_000  # 09:30 New York (EST) in UTC
SESSION_NS = int(6.5 * 3600 * 1_000_000_000)


def trading_days(*, days: int, end: date | None = None) -> list[date]:
    day = end or (datetime.now(timezone.utc).date() - timedelta(days=1))
    out: list[date] = []
    while len(out) < days:
        if day.weekday() < 5:
            out.append(day)
        day -= timedelta(days=1)
    return sorted(out)


def synthetic_batches(
    *, tickers: int, days: int, rows: int, seed: int = 7, end: date | None = None, batch_rows: int = 500_000
) -> Iterator[pd.DataFrame]:
    """Frames of realistic synthetic trades (random-walk prices, intraday bursts), in time order per ticker."""
    rng = np.random.default_rng(seed)
    names = (DEFAULT_TICKERS + [f"T{i:03d}" for i in range(max(0, tickers - len(DEFAULT_TICKERS)))])[:tickers]
    day_list = trading_days(days=days, end=end)
    exchange_ids = np.array(list(EXCHANGE_WEIGHTS))
    weights = np.array(list(EXCHANGE_WEIGHTS.values()))
    weights = weights / weights.sum()
    popularity = rng.pareto(1.5, size=len(names)) + 1
    share = popularity / popularity.sum()
    per_ticker = np.maximum(1, np.round(share * rows)).astype(np.int64)
    per_ticker[-1] = max(1, rows - per_ticker[:-1].sum())  # exact total
    pending: list[pd.DataFrame] = []
    pending_rows = 0
    for ticker, count in zip(names, per_ticker):
        count = int(count)
        day_share = rng.dirichlet(np.ones(len(day_list)) * 5)
        day_counts = rng.multinomial(count, day_share)
        price = float(rng.uniform(10, 500))
        for day, n in zip(day_list, day_counts):
            if n == 0:
                continue
            base = int(datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc).timestamp()) * 1_000_000_000
            # Intraday bursts: half the trades cluster around a few moments, the rest spread (U-shaped).
            burst_n = n // 2
            centres = rng.uniform(0, SESSION_NS, size=max(1, n // 2000 + 1))
            burst = rng.choice(centres, size=burst_n) + rng.exponential(2e9, size=burst_n)
            spread = SESSION_NS * rng.beta(0.6, 0.6, size=n - burst_n)
            offsets = np.clip(np.concatenate([burst, spread]), 0, SESSION_NS - 1).astype(np.int64)
            offsets.sort()
            returns = rng.normal(0, 0.0004, size=n)
            prices = np.round(price * np.exp(np.cumsum(returns)), 2)
            prices = np.maximum(prices, 0.01)
            price = float(prices[-1])
            sizes = np.maximum(1, np.round(rng.lognormal(4.0, 1.2, size=n))).astype(np.int64)
            round_lot = rng.random(n) < 0.4
            sizes[round_lot] = np.maximum(100, (sizes[round_lot] // 100) * 100)
            frame = pd.DataFrame(
                {
                    "ticker": ticker,
                    "exchange_id": rng.choice(exchange_ids, size=n, p=weights),
                    "participant_timestamp": base + SESSION_START_NS + offsets,
                    "price": prices,
                    "size": sizes,
                }
            )
            pending.append(frame)
            pending_rows += n
            if pending_rows >= batch_rows:
                yield pd.concat(pending, ignore_index=True)
                pending, pending_rows = [], 0
    if pending:
        yield pd.concat(pending, ignore_index=True)


def trades_generate(*, tickers: int, days: int, rows: int, seed: int = 7, stdout=None) -> int:
    """Generate and bulk-insert synthetic trades; del_t/del_p chain onto stored trades of each ticker."""
    exchanges_ensure()
    total = 0
    last: dict[str, tuple[int, float]] = {}
    for frame in synthetic_batches(tickers=tickers, days=days, rows=rows, seed=seed):
        missing = [t for t in frame["ticker"].unique().tolist() if t not in last]
        if missing:
            last.update(_previous_trades(missing, int(frame["participant_timestamp"].min())))
        frame = add_deltas(frame, last)
        tail = frame.groupby("ticker").tail(1)
        for ticker, ts, price in zip(tail["ticker"], tail["participant_timestamp"], tail["price"]):
            last[ticker] = (int(ts), float(price))
        with transaction.atomic():
            total += trades_bulk_insert(frame)
        if stdout is not None:
            stdout.write(f"  {total:,} / {rows:,} trades\n")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Trade._meta.db_table}")
    return total
