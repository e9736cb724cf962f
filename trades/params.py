"""The normalized export request: one shape for the page, the API, signatures and SQL."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone

from django.core.exceptions import ValidationError
from django.utils import timezone as dj_timezone

SORT_CHOICES = {
    "time_desc": "Time (newest first)",
    "time_asc": "Time (oldest first)",
    "size_asc": "Size (ascending)",
    "size_desc": "Size (descending)",
    "price_asc": "Price (ascending)",
    "price_desc": "Price (descending)",
}
# Spellings of the old tool's sort values, accepted on input.
SORT_ALIASES = {"newest": "time_desc", "oldest": "time_asc", "time": "time_desc"}
BUCKETS_NS = {
    "ns": 1,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "min": 60_000_000_000,
    "hr": 3_600_000_000_000,
    "day": 86_400_000_000_000,
}
BUCKET_LABELS = {"ns": "Nanosecond", "ms": "Millisecond", "s": "Second", "min": "Minute", "hr": "Hour", "day": "Day"}
AGGREGATE_FUNCTIONS = {"sum": "SUM", "avg": "AVG", "min": "MIN", "max": "MAX"}
MAX_OPERATIONS = 5

RAW_COLUMNS = ["ticker", "exchange", "participant_timestamp", "price", "size", "del_t", "del_p"]
AGG_COLUMNS = ["bucket_start", "ticker", "trade_count", "open", "high", "low", "close", "total_size"]


TICKER_RE = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,15}$")


def min_date() -> date:
    from trades import conf

    return date.fromisoformat(conf.MIN_DATE)


def day_start_ns(day: date) -> int:
    return int(datetime.combine(day, time.min, tzinfo=timezone.utc).timestamp()) * 1_000_000_000


@dataclass(frozen=True)
class ExportParams:
    exchanges: tuple[int, ...] = ()
    tickers: tuple[str, ...] = ()
    pricelow: float | None = None
    pricehigh: float | None = None
    sizelow: int | None = None
    sizehigh: int | None = None
    datelow: date | None = None
    datehigh: date | None = None
    operations: tuple[str, ...] = ()  # normalized expression texts
    sortby: str | None = "time_desc"
    aggregateby: str | None = None
    aggregate_fn: str = "sum"
    format: str = "csv"
    extra: dict = field(default_factory=dict, compare=False)

    def clean(self) -> ExportParams:
        """The export rules, for every route (page, API, preview): the request normalized, or every broken rule.

        The serializer has already checked the shape (types, choices, lengths); this checks what the
        data and the settings allow.
        """
        from trades.models import Exchange

        errors: dict[str, list[str]] = {}
        exchanges = tuple(sorted(set(self.exchanges)))
        if exchanges:
            known = set(Exchange.objects.filter(id__in=exchanges).values_list("id", flat=True))
            unknown = [str(v) for v in exchanges if v not in known]
            if unknown:
                errors["exchanges"] = [f"Unknown exchange id(s): {', '.join(unknown)}."]
        tickers = tuple(sorted({v.strip().upper() for v in self.tickers if v.strip()}))
        bad = [v for v in tickers if not TICKER_RE.match(v)]
        if bad:
            errors["tickers"] = [f"Not a ticker symbol: {', '.join(bad[:5])}."]
        for name in ("datelow", "datehigh"):
            value = getattr(self, name)
            if value is not None and value < min_date():
                errors[name] = [f"Dates start at {min_date().isoformat()}."]
            elif value is not None and value > dj_timezone.now().date():
                errors[name] = ["Dates cannot be in the future."]
        operations = tuple(dict.fromkeys(self.operations))
        if len(operations) != len(self.operations):
            errors["operations"] = ["The same expression is listed twice."]
        for low, high, label in (("pricelow", "pricehigh", "price"), ("sizelow", "sizehigh", "size")):
            a, b = getattr(self, low), getattr(self, high)
            if a is not None and b is not None and a > b and high not in errors:
                errors[high] = [f"The maximum {label} must be at least the minimum."]
        if self.datelow and self.datehigh and self.datelow > self.datehigh and "datehigh" not in errors:
            errors["datehigh"] = ["The end date must not be before the start date."]
        if errors:
            raise ValidationError(errors)
        return replace(self, exchanges=exchanges, tickers=tickers, operations=operations)

    @property
    def aggregated(self) -> bool:
        return self.aggregateby is not None

    @property
    def columns(self) -> list[str]:
        base = AGG_COLUMNS if self.aggregated else RAW_COLUMNS
        if self.aggregated:
            return base + [f"{self.aggregate_fn}({text})" for text in self.operations]
        return base + list(self.operations)

    @property
    def ts_low_ns(self) -> int | None:
        return day_start_ns(self.datelow) if self.datelow else None

    @property
    def ts_high_ns(self) -> int | None:
        """Exclusive upper bound: the end date covers its whole day."""
        return day_start_ns(self.datehigh + timedelta(days=1)) if self.datehigh else None

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("extra")
        data["exchanges"] = list(self.exchanges)
        data["tickers"] = list(self.tickers)
        data["operations"] = [{"expression": text} for text in self.operations]
        data["datelow"] = self.datelow.isoformat() if self.datelow else None
        data["datehigh"] = self.datehigh.isoformat() if self.datehigh else None
        return data

    @classmethod
    def from_json(cls, data: dict) -> ExportParams:
        return cls(
            exchanges=tuple(data.get("exchanges") or ()),
            tickers=tuple(data.get("tickers") or ()),
            pricelow=data.get("pricelow"),
            pricehigh=data.get("pricehigh"),
            sizelow=data.get("sizelow"),
            sizehigh=data.get("sizehigh"),
            datelow=date.fromisoformat(data["datelow"]) if data.get("datelow") else None,
            datehigh=date.fromisoformat(data["datehigh"]) if data.get("datehigh") else None,
            operations=tuple(op["expression"] for op in data.get("operations") or ()),
            sortby=data.get("sortby"),
            aggregateby=data.get("aggregateby"),
            aggregate_fn=data.get("aggregate_fn") or "sum",
            format=data.get("format") or "csv",
        )

    def signature(self, *, owner_id: int) -> str:
        payload = json.dumps({"owner": owner_id, "request": self.to_json()}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()
