"""Writes of market data: instruments, bar upserts, CSV imports, synthetic series, Binance fetches."""

from __future__ import annotations

import logging
from datetime import datetime, timezone as dt_timezone

import numpy as np
import pandas as pd
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from backtest import conf
from backtest.fetcher import BinanceClient
from backtest.importers import ImportFormatError, check_ohlcv_file, describe_invalid, parse_ohlcv_csv, parse_ohlcv_file
from backtest.models import INTERVAL_SECONDS, BarImport, Instrument, InstrumentKind, Interval, PriceBar
from core.filecache import local_copy
from core.services import job_enqueue, job_fail, job_progress, job_succeed
from core.storage import stored_delete, stored_save_upload
from backtest.selectors import find_gaps
from backtest.synthetic import synthetic_bars

logger = logging.getLogger(__name__)

UPSERT_BATCH = 5000


def instrument_create(
    *, symbol: str, kind: str, exchange: str, exchange_symbol: str = "", name: str = "",
    fractional: bool | None = None, active: bool = True,
) -> Instrument:
    instrument = Instrument(
        symbol=symbol.strip().upper(), kind=kind, exchange=exchange.strip().upper(),
        exchange_symbol=(exchange_symbol or symbol).strip().upper(), name=name,
        fractional=(kind == InstrumentKind.CRYPTO) if fractional is None else fractional, active=active,
    )
    instrument.full_clean()
    instrument.save()
    return instrument


def instrument_ensure(*, symbol: str, kind: str, exchange: str, **fields) -> Instrument:
    existing = Instrument.objects.filter(symbol=symbol.strip().upper()).first()
    return existing or instrument_create(symbol=symbol, kind=kind, exchange=exchange, **fields)


def _check_interval(interval: str) -> None:
    if interval not in Interval.values:
        raise ValidationError({"interval": f"Unknown interval {interval!r}; use one of {', '.join(Interval.values)}."})


def bars_upsert(*, instrument: Instrument, interval: str, frame: pd.DataFrame) -> dict:
    """Insert or update bars (frame columns: open_time (UTC), open, high, low, close, volume).

    Idempotent: re-importing the same rows changes nothing. Returns counts of
    created and updated rows and the gaps found in the stored series.
    """
    _check_interval(interval)
    if frame.empty:
        return {"rows": 0, "created": 0, "updated": 0, **_gap_report(instrument, interval)}
    times = pd.DatetimeIndex(frame["open_time"]).tz_convert("UTC")
    existing = set(
        PriceBar.objects.filter(
            instrument=instrument, interval=interval, open_time__gte=times.min(), open_time__lte=times.max()
        ).values_list("open_time", flat=True)
    )
    objs = [
        PriceBar(
            instrument=instrument, interval=interval, open_time=t.to_pydatetime(),
            open=float(o), high=float(h), low=float(l), close=float(c), volume=float(v),
        )
        for t, o, h, l, c, v in zip(
            times, frame["open"], frame["high"], frame["low"], frame["close"], frame["volume"], strict=True
        )
    ]
    with transaction.atomic():
        for i in range(0, len(objs), UPSERT_BATCH):
            PriceBar.objects.bulk_create(
                objs[i : i + UPSERT_BATCH], update_conflicts=True,
                unique_fields=["instrument", "interval", "open_time"],
                update_fields=["open", "high", "low", "close", "volume"],
            )
    updated = sum(1 for o in objs if o.open_time in existing)
    return {"rows": len(objs), "created": len(objs) - updated, "updated": updated, **_gap_report(instrument, interval)}


def _gap_report(instrument: Instrument, interval: str) -> dict:
    times = np.array(
        [int(t.timestamp()) for t in PriceBar.objects.filter(instrument=instrument, interval=interval)
         .order_by("open_time").values_list("open_time", flat=True)],
        dtype=np.int64,
    )
    gaps = find_gaps(times, interval=interval, kind=instrument.kind)
    return {"gaps": gaps[:50], "gap_count": len(gaps), "missing_bars": sum(g["missing"] for g in gaps)}


def bars_import_csv(*, instrument: Instrument, interval: str, data: bytes | str, fmt: str = "auto") -> dict:
    frame, report = parse_ohlcv_csv(data, fmt=fmt)
    return _import_report(report, bars_upsert(instrument=instrument, interval=interval, frame=frame))


def _import_report(report, result: dict) -> dict:
    return {
        "format": report.format, "time_unit": report.time_unit, "duplicates_in_file": report.duplicates,
        "invalid_rows": report.invalid, "invalid_lines": report.invalid_lines,
        "invalid_reasons": report.invalid_reasons,
        "invalid_detail": describe_invalid(report) if report.invalid else "", **result,
    }


def bars_import_summary(report: dict) -> str:
    """One line, as the import_bars command prints it."""
    text = (
        f"{report['rows']:,} rows ({report['created']:,} new, {report['updated']:,} updated); "
        f"{report['duplicates_in_file']:,} duplicates and {report['invalid_rows']:,} invalid rows in the file; "
        f"the stored series has {report['gap_count']:,} gaps ({report['missing_bars']:,} missing bars)"
    )
    return text


def bars_import_create(*, owner, instrument: Instrument, interval: str, upload, fmt: str = "auto") -> BarImport:
    """Check an uploaded CSV (first 64 KiB: text, columns, format) and queue its import.

    `upload` is a Django UploadedFile, already on disk (see `backtest.uploads`); it is copied
    chunk by chunk into storage for the job. Raises ValidationError with what to fix.
    Market data is everyone's, so only staff import it (PermissionDenied otherwise).
    """
    if not (owner is not None and owner.is_authenticated and owner.is_active and owner.is_staff):
        raise PermissionDenied("Only staff can import market data.")
    _check_interval(interval)
    if fmt not in ("auto", "generic", "binance"):
        raise ValidationError({"format": "Use auto, generic or binance."})
    if not upload.size:
        raise ValidationError({"file": "The file is empty."})
    if upload.size > conf.IMPORT_MAX_BYTES:
        raise ValidationError({"file": bars_import_size_message(upload.size)})
    try:
        path = upload.temporary_file_path()
    except AttributeError:  # an in-memory upload (tests, small files with other handlers)
        path = None
    try:
        detected = check_ohlcv_file(path, fmt=fmt) if path else check_ohlcv_file(upload, fmt=fmt)
    except ImportFormatError as exc:
        raise ValidationError({"file": str(exc)}) from None
    job = BarImport(owner=owner, instrument=instrument, interval=interval, format=detected,
                    filename=(upload.name or "upload.csv")[-255:], size=upload.size)
    with transaction.atomic():
        job.save()
        # Django's temporary file of the upload is moved into storage (uploaded on S3), not copied here.
        job.file.name = stored_save_upload(job.file.field.generate_filename(job, f"import-{job.pk}.csv"), upload)
        BarImport.objects.filter(pk=job.pk).update(file=job.file.name)
        job_enqueue(job=job)
    return job


def _bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return ""


def bars_import_size_message(size: int, *, at_least: bool = False) -> str:
    """What to do with a file over `BACKTEST_IMPORT_MAX_BYTES` (`at_least`: the upload was cut at `size`)."""
    what = f"larger than {_bytes(conf.IMPORT_MAX_BYTES)}" if at_least else f"{_bytes(size)}"
    return (f"The file is {what}; uploads are limited to {_bytes(conf.IMPORT_MAX_BYTES)} "
            "(BACKTEST_IMPORT_MAX_BYTES). Split it into several files (each import is an upsert), "
            "or import it with manage.py import_bars.")


IMPORT_FILE_MISSING = "The uploaded file is no longer in storage; upload it again."


def bars_import_execute(job: BarImport) -> None:
    """Job body: parse the stored upload and upsert it; a file we cannot read fails with what to fix."""
    try:
        job_progress(job=job, fraction=0.1, message=f"Reading {job.filename}")
        try:
            with local_copy(job.file.name) as path:  # this host's copy of the stored upload
                frame, report = parse_ohlcv_file(path, fmt=job.format)
        except ImportFormatError as exc:
            job_fail(job=job, error=str(exc), message=f"Not imported: {exc}"[:500])
            return
        except FileNotFoundError:
            logger.error("bar import %s: the store does not hold %s", job.pk, job.file.name)
            job_fail(job=job, error=IMPORT_FILE_MISSING, message="Not imported: the uploaded file is missing")
            return
        job_progress(job=job, fraction=0.4, message=f"Storing {report.rows:,} bars")
        result = _import_report(report, bars_upsert(instrument=job.instrument, interval=job.interval, frame=frame))
        job_succeed(job=job, message=bars_import_summary(result), report=result)
    finally:
        if job.file:
            stored_delete(job.file.name)
            BarImport.objects.filter(pk=job.pk).update(file="")


def bars_generate(
    *, instrument: Instrument, interval: str, bars: int, start: str = "2023-01-01", seed: int = 0,
    start_price: float = 100.0,
) -> dict:
    _check_interval(interval)
    frame = synthetic_bars(
        n=bars, interval_seconds=INTERVAL_SECONDS[interval], start=start, seed=seed,
        start_price=start_price, kind=instrument.kind,
    )
    frame = frame.reset_index(names="open_time").rename(columns=str.lower)
    frame["open_time"] = pd.DatetimeIndex(frame["open_time"]).tz_localize("UTC")
    return bars_upsert(instrument=instrument, interval=interval, frame=frame)


def _klines_frame(rows: list[list]) -> pd.DataFrame:
    arr = pd.DataFrame([r[:6] for r in rows], columns=["open_time", "open", "high", "low", "close", "volume"])
    arr = arr.apply(pd.to_numeric, errors="coerce").dropna()
    arr["open_time"] = pd.to_datetime(arr["open_time"].astype("int64"), unit="ms", utc=True)
    return arr.drop_duplicates("open_time", keep="last")


def bars_fetch(
    *, instrument: Instrument, interval: str, client: BinanceClient | None = None, max_calls: int | None = None
) -> dict:
    """Fetch klines from Binance, resuming at the last stored bar (which is re-fetched:
    it may have been stored while still forming)."""
    _check_interval(interval)
    client = client or BinanceClient()
    last = (
        PriceBar.objects.filter(instrument=instrument, interval=interval)
        .order_by("-open_time").values_list("open_time", flat=True).first()
    )
    if last is not None:
        start_ms = int(last.timestamp() * 1000)
    else:
        start = datetime.fromisoformat(conf.FETCH_START)
        start = start if start.tzinfo else start.replace(tzinfo=dt_timezone.utc)
        start_ms = int(start.timestamp() * 1000)
    totals = {"symbol": instrument.symbol, "interval": interval, "pages": 0, "rows": 0, "created": 0, "updated": 0}
    for page in client.klines(
        symbol=instrument.exchange_symbol or instrument.symbol, interval=interval, start_ms=start_ms, max_calls=max_calls
    ):
        result = bars_upsert(instrument=instrument, interval=interval, frame=_klines_frame(page))
        totals["pages"] += 1
        for key in ("rows", "created", "updated"):
            totals[key] += result[key]
        totals["gap_count"], totals["missing_bars"] = result["gap_count"], result["missing_bars"]
    totals.update(calls=client.stats.calls, retries=client.stats.retries, waited_seconds=client.stats.waited_seconds)
    return totals


def bars_fetch_active(*, client: BinanceClient | None = None) -> list[dict]:
    """The scheduled job: bring every active Binance instrument up to date."""
    if not conf.FETCH_ENABLED and client is None:
        logger.info("backtest fetch skipped: BACKTEST_FETCH_ENABLED is off")
        return []
    reports = []
    for instrument in Instrument.objects.filter(active=True, kind=InstrumentKind.CRYPTO, exchange="BINANCE"):
        for interval in conf.FETCH_INTERVALS:
            try:
                reports.append(bars_fetch(instrument=instrument, interval=interval, client=client))
            except Exception as exc:  # one failing symbol must not stop the others
                logger.warning("fetch of %s %s failed: %s", instrument.symbol, interval, exc)
                reports.append({"symbol": instrument.symbol, "interval": interval, "error": str(exc)})
    logger.info("backtest fetch finished at %s: %s", timezone.now().isoformat(), reports)
    return reports
