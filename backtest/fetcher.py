"""Binance REST klines client: paginated, rate-limit and Retry-After aware.

`GET /api/v3/klines?symbol=&interval=&startTime=&limit=1000` returns up to
1000 bars from `startTime` (ms). HTTP 429 (too many requests) and 418 (IP
banned for ignoring 429s) carry a `Retry-After` header in seconds; we wait
that long (bounded) and retry. The `X-MBX-USED-WEIGHT-1M` header tells how
much of the per-minute weight is used; close to the limit we slow down.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import requests

from backtest import conf

PAGE_LIMIT = 1000
WEIGHT_LIMIT_1M = 6000


class FetchError(RuntimeError):
    pass


@dataclass
class FetchStats:
    calls: int = 0
    retries: int = 0
    waited_seconds: float = 0.0
    waits: list[float] = field(default_factory=list)


class BinanceClient:
    def __init__(
        self,
        *,
        base_url: str | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 10.0,
        pause: float | None = None,
        max_retry_after: float | None = None,
        retries: int | None = None,
    ):
        self.base_url = (base_url or conf.BINANCE_URL).rstrip("/")
        self.session = session or requests.Session()
        self.sleep = sleep
        self.timeout = timeout
        self.pause = conf.FETCH_PAUSE if pause is None else pause
        self.max_retry_after = conf.FETCH_MAX_RETRY_AFTER if max_retry_after is None else max_retry_after
        self.retries = conf.FETCH_RETRIES if retries is None else retries
        self.stats = FetchStats()

    def _wait(self, seconds: float) -> None:
        seconds = max(0.0, min(seconds, self.max_retry_after))
        self.stats.waits.append(seconds)
        self.stats.waited_seconds += seconds
        if seconds:
            self.sleep(seconds)

    def klines_page(self, *, symbol: str, interval: str, start_ms: int, end_ms: int | None = None) -> list[list]:
        params = {"symbol": symbol, "interval": interval, "startTime": int(start_ms), "limit": PAGE_LIMIT}
        if end_ms is not None:
            params["endTime"] = int(end_ms)
        for attempt in range(self.retries + 1):
            self.stats.calls += 1
            try:
                response = self.session.get(f"{self.base_url}/api/v3/klines", params=params, timeout=self.timeout)
            except requests.RequestException as exc:
                if attempt == self.retries:
                    raise FetchError(f"Binance request failed: {exc}") from exc
                self.stats.retries += 1
                self._wait(2.0**attempt)
                continue
            if response.status_code in (429, 418):
                if attempt == self.retries:
                    raise FetchError(f"Binance kept answering {response.status_code} (rate limited).")
                self.stats.retries += 1
                try:
                    retry_after = float(response.headers.get("Retry-After", "") or 2.0**attempt)
                except ValueError:
                    retry_after = 2.0**attempt
                self._wait(retry_after)
                continue
            if response.status_code >= 500 and attempt < self.retries:
                self.stats.retries += 1
                self._wait(2.0**attempt)
                continue
            if response.status_code != 200:
                raise FetchError(f"Binance answered {response.status_code}: {response.text[:200]}")
            used = response.headers.get("X-MBX-USED-WEIGHT-1M")
            if used and used.isdigit() and int(used) > WEIGHT_LIMIT_1M * 0.8:
                self._wait(60 - time.time() % 60)  # let the minute window roll over
            try:
                rows = response.json()
            except ValueError as exc:
                raise FetchError("Binance answered with something that is not JSON.") from exc
            if not isinstance(rows, list):
                raise FetchError(f"Unexpected klines answer: {str(rows)[:200]}")
            return rows
        raise FetchError("unreachable")

    def klines(
        self, *, symbol: str, interval: str, start_ms: int, end_ms: int | None = None, max_calls: int | None = None
    ) -> Iterator[list[list]]:
        """Pages of klines from `start_ms` on, until a short page, `end_ms` or `max_calls`."""
        max_calls = conf.FETCH_MAX_CALLS if max_calls is None else max_calls
        cursor = int(start_ms)
        for call in range(max_calls):
            if call and self.pause:
                self.sleep(self.pause)
            page = self.klines_page(symbol=symbol, interval=interval, start_ms=cursor, end_ms=end_ms)
            if not page:
                return
            yield page
            last_open = int(page[-1][0])
            if len(page) < PAGE_LIMIT or (end_ms is not None and last_open >= end_ms):
                return
            cursor = last_open + 1
