"""REST API: market data under /api/market/, backtests under /api/backtest/.

One view per operation; each validates its input with a small serializer and
calls one service or selector.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from backtest import market_services, selectors, services, uploads
from backtest.metrics import METRICS
from backtest.models import BarImport, Instrument, InstrumentKind, Interval
from backtest.serializers import (
    MarketImportOutput,
    BacktestRunCreateOutput,
    BacktestRunDetailOutput,
    BacktestRunOutput,
    BacktestSweepDetailOutput,
    BacktestSweepOutput,
    import_data,
    run_data,
    sweep_data,
)
from backtest.strategies import STRATEGIES
from core.api import ErrorSerializer, Pagination, job_cancel_response, paginated_response
from core.permissions import IsStaff, found_or_404

MAX_PRICE_ROWS = 50_000


def _instrument_or_400(symbol: str, field: str = "symbol") -> Instrument:
    instrument = selectors.instrument_get(symbol=symbol)
    if instrument is None:
        raise ValidationError({field: [f"Unknown instrument {symbol!r}."]})
    return instrument


class CostsInput(serializers.Serializer):
    interval = serializers.ChoiceField(choices=Interval.values, default="1h")
    strategy = serializers.ChoiceField(choices=list(STRATEGIES))
    start = serializers.DateTimeField(required=False, allow_null=True, default=None)
    end = serializers.DateTimeField(required=False, allow_null=True, default=None)
    commission_bps = serializers.FloatField(min_value=0, max_value=500, default=10.0)
    slippage_bps = serializers.FloatField(min_value=0, max_value=500, default=0.0)
    initial_cash = serializers.FloatField(min_value=1, max_value=1e12, default=10_000.0)

    def validate(self, attrs):
        if attrs.get("start") and attrs.get("end") and attrs["start"] >= attrs["end"]:
            raise ValidationError({"end": ["The end must be after the start."]})
        return attrs


# --- market data ---------------------------------------------------------------------------


INSTRUMENT_LIST = inline_serializer("InstrumentList", {
    "count": serializers.IntegerField(),
    "results": inline_serializer("Instrument", {
        "symbol": serializers.CharField(), "name": serializers.CharField(allow_blank=True),
        "kind": serializers.CharField(), "exchange": serializers.CharField(),
        "exchange_symbol": serializers.CharField(allow_blank=True), "fractional": serializers.BooleanField(),
        "active": serializers.BooleanField(),
        "data": inline_serializer("InstrumentCoverage", {
            "interval": serializers.CharField(), "bars": serializers.IntegerField(),
            "first": serializers.DateTimeField(), "last": serializers.DateTimeField(),
        }, many=True),
    }, many=True),
})
PRICE_LIST = inline_serializer("PriceList", {
    "symbol": serializers.CharField(), "interval": serializers.CharField(), "count": serializers.IntegerField(),
    "truncated": serializers.BooleanField(help_text="More bars match than `limit`"),
    "columns": serializers.ListField(child=serializers.CharField()),
    "bars": serializers.ListField(child=serializers.ListField(), help_text="[time, open, high, low, close, volume]"),
})


class InstrumentListApi(APIView):
    class FilterInput(serializers.Serializer):
        kind = serializers.ChoiceField(choices=InstrumentKind.values, required=False)
        active = serializers.BooleanField(required=False, allow_null=True, default=None)

    @extend_schema(parameters=[FilterInput], responses=INSTRUMENT_LIST, operation_id="market_instruments_list")
    def get(self, request):
        params = self.FilterInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        coverage: dict[int, list] = {}
        for row in selectors.bar_coverage():
            coverage.setdefault(row["instrument_id"], []).append(
                {"interval": row["interval"], "bars": row["count"], "first": row["first"].isoformat(),
                 "last": row["last"].isoformat()}
            )
        data = [
            {
                "symbol": i.symbol, "name": i.name, "kind": i.kind, "exchange": i.exchange,
                "exchange_symbol": i.exchange_symbol, "fractional": i.fractional, "active": i.active,
                "data": coverage.get(i.pk, []),
            }
            for i in selectors.instrument_list(**params.validated_data)
        ]
        return Response({"count": len(data), "results": data})


class PriceListApi(APIView):
    class FilterInput(serializers.Serializer):
        symbol = serializers.CharField(max_length=32)
        interval = serializers.ChoiceField(choices=Interval.values, default="1h")
        start = serializers.DateTimeField(required=False, default=None)
        end = serializers.DateTimeField(required=False, default=None)
        limit = serializers.IntegerField(min_value=1, max_value=MAX_PRICE_ROWS, default=5_000)

    @extend_schema(parameters=[FilterInput], responses=PRICE_LIST, operation_id="market_prices_list")
    def get(self, request):
        params = self.FilterInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        p = params.validated_data
        instrument = _instrument_or_400(p["symbol"])
        qs = selectors.bars_queryset(instrument=instrument, interval=p["interval"], start=p["start"], end=p["end"])
        rows = list(qs.values_list("open_time", "open", "high", "low", "close", "volume")[: p["limit"] + 1])
        truncated = len(rows) > p["limit"]
        rows = rows[: p["limit"]]
        return Response({
            "symbol": instrument.symbol, "interval": p["interval"], "count": len(rows), "truncated": truncated,
            "columns": ["time", "open", "high", "low", "close", "volume"],
            "bars": [[t.isoformat(), o, h, lo, c, v] for t, o, h, lo, c, v in rows],
        })


class LatestPriceApi(APIView):
    class FilterInput(serializers.Serializer):
        interval = serializers.ChoiceField(choices=Interval.values, default="1h")
        kind = serializers.ChoiceField(choices=InstrumentKind.values, required=False, default=None)

    @extend_schema(parameters=[FilterInput], responses=OpenApiTypes.OBJECT, operation_id="market_latest_list")
    def get(self, request):
        params = self.FilterInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        return Response({"results": selectors.latest_prices(**params.validated_data)})


class StatsApi(APIView):
    class FilterInput(serializers.Serializer):
        symbol = serializers.CharField(max_length=32, required=False)
        interval = serializers.ChoiceField(choices=Interval.values, default="1h")

    @extend_schema(parameters=[FilterInput], responses=OpenApiTypes.OBJECT, operation_id="market_stats_list")
    def get(self, request):
        params = self.FilterInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        p = params.validated_data
        instruments = [_instrument_or_400(p["symbol"])] if p.get("symbol") else list(selectors.instrument_list())
        return Response({
            "results": [selectors.instrument_stats(instrument=i, interval=p["interval"]) for i in instruments]
        })


class ImportApi(APIView):
    """Upload an OHLCV CSV (multipart field `file`) into an instrument's bars; staff only, since
    market data is shared. The file streams to a temporary file; the import runs as a job."""

    permission_classes = [IsStaff]
    parser_classes = [MultiPartParser, FormParser]

    class ImportInput(serializers.Serializer):
        file = serializers.FileField(error_messages={
            "required": "Send the CSV as the multipart field 'file'.",
            "invalid": "Send the CSV as a file in a multipart/form-data request (field 'file').",
            "empty": "The file is empty: send a CSV with a header and data rows."})
        symbol = serializers.CharField(max_length=32)
        interval = serializers.ChoiceField(choices=Interval.values)
        format = serializers.ChoiceField(choices=["auto", "generic", "binance"], default="auto")
        kind = serializers.ChoiceField(choices=InstrumentKind.values, required=False)
        exchange = serializers.CharField(max_length=16, required=False)

    def initialize_request(self, request, *args, **kwargs):
        self.upload_handler = uploads.install(request)  # before authentication (CSRF) reads the body
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(request={"multipart/form-data": ImportInput}, responses={202: MarketImportOutput},
                   operation_id="market_import_create")
    def post(self, request):
        declared = uploads.declared_too_large(request)
        if declared:  # refuse before reading the body
            raise ValidationError({"file": [market_services.bars_import_size_message(declared)]})
        body = self.ImportInput(data=request.data)
        if self.upload_handler.too_large:
            raise ValidationError({"file": [market_services.bars_import_size_message(self.upload_handler.too_large, at_least=True)]})
        body.is_valid(raise_exception=True)
        data = body.validated_data
        instrument = selectors.instrument_get(symbol=data["symbol"])
        try:
            if instrument is None:
                if not data.get("kind") or not data.get("exchange"):
                    raise ValidationError({"symbol": [f"Unknown instrument {data['symbol']!r}: send kind and "
                                                      "exchange to create it."]})
                instrument = market_services.instrument_create(symbol=data["symbol"], kind=data["kind"],
                                                               exchange=data["exchange"])
            job = market_services.bars_import_create(owner=request.user, instrument=instrument,
                                                     interval=data["interval"], upload=data["file"], fmt=data["format"])
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"file": exc.messages}) from None
        job.refresh_from_db()
        return Response(import_data(job), status=status.HTTP_202_ACCEPTED)


class ImportDetailApi(APIView):
    @extend_schema(responses=MarketImportOutput, operation_id="market_import_retrieve")
    def get(self, request, pk: int):
        job = found_or_404(selectors.bar_import_get_for_viewer(user=request.user, pk=pk))
        return Response(import_data(job))


# --- strategies and runs ---------------------------------------------------------------------


class StrategyListApi(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT, operation_id="backtest_strategies_list")
    def get(self, request):
        return Response({
            "results": [s.schema() for s in STRATEGIES.values()],
            "metrics": [{"key": k, "label": v[0], "unit": v[1], "higher_is_better": v[2]} for k, v in METRICS.items()],
        })


class RunListCreateApi(APIView):
    pagination_class = Pagination

    class RunInput(CostsInput):
        symbol = serializers.CharField(max_length=32)
        params = serializers.DictField(required=False, default=dict)

    @extend_schema(responses=BacktestRunOutput(many=True), operation_id="backtest_runs_list")
    def get(self, request):
        return paginated_response(self, request, selectors.run_list(user=request.user),
                                  lambda page: [run_data(r) for r in page])

    @extend_schema(request=RunInput, responses={201: BacktestRunCreateOutput, 200: BacktestRunCreateOutput}, operation_id="backtest_runs_create")
    def post(self, request):
        body = self.RunInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        instrument = _instrument_or_400(data.pop("symbol"))
        run, created = services.backtest_run_create(owner=request.user, instrument=instrument, **data)
        run.refresh_from_db()
        return Response(
            {**run_data(run, detail=True), "deduplicated": not created or run.reused},
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class RunDetailApi(APIView):
    class DetailInput(serializers.Serializer):
        equity = serializers.BooleanField(default=False, help_text="Include the equity curve and drawdown")

    @extend_schema(parameters=[DetailInput], responses=BacktestRunDetailOutput, operation_id="backtest_runs_retrieve")
    def get(self, request, pk: int):
        run = found_or_404(selectors.run_get_for_viewer(user=request.user, pk=pk))
        params = self.DetailInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        return Response(run_data(run, detail=True, equity=params.validated_data["equity"]))


# --- sweeps ---------------------------------------------------------------------------------------


class SweepListCreateApi(APIView):
    pagination_class = Pagination

    class SweepInput(CostsInput):
        symbols = serializers.ListField(child=serializers.CharField(max_length=32), min_length=1, max_length=50)
        grid = serializers.DictField()
        sample = serializers.IntegerField(required=False, allow_null=True, min_value=1, default=None)
        seed = serializers.IntegerField(required=False, default=0, min_value=0, max_value=2**31 - 1)

    @extend_schema(responses=BacktestSweepOutput(many=True), operation_id="backtest_sweeps_list")
    def get(self, request):
        return paginated_response(self, request, selectors.sweep_list(user=request.user),
                                  lambda page: [sweep_data(s) for s in page])

    @extend_schema(request=SweepInput, responses={201: BacktestSweepOutput}, operation_id="backtest_sweeps_create")
    def post(self, request):
        body = self.SweepInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        instruments = [_instrument_or_400(s, "symbols") for s in data.pop("symbols")]
        sweep = services.sweep_create(owner=request.user, instruments=instruments, **data)
        sweep.refresh_from_db()
        return Response(sweep_data(sweep), status=status.HTTP_201_CREATED)


class SweepDetailApi(APIView):
    class ResultsInput(serializers.Serializer):
        sort = serializers.ChoiceField(choices=list(METRICS), default="sharpe")
        order = serializers.ChoiceField(choices=["asc", "desc"], default="desc")
        limit = serializers.IntegerField(min_value=1, max_value=10_000, default=50)

    @extend_schema(parameters=[ResultsInput], responses=BacktestSweepDetailOutput, operation_id="backtest_sweeps_retrieve")
    def get(self, request, pk: int):
        sweep = found_or_404(selectors.sweep_get_for_viewer(user=request.user, pk=pk))
        params = self.ResultsInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        p = params.validated_data
        rows = selectors.sweep_results_sorted(
            sweep=sweep, metric=p["sort"], descending=p["order"] == "desc", limit=p["limit"]
        )
        return Response(sweep_data(sweep, results=rows))


class SweepCancelApi(APIView):
    @extend_schema(request=None, responses={202: BacktestSweepOutput, 409: ErrorSerializer}, operation_id="backtest_sweeps_cancel")
    def post(self, request, pk: int):
        sweep = found_or_404(selectors.sweep_get_for_viewer(user=request.user, pk=pk))
        return job_cancel_response(job=sweep, by=request.user, noun="sweep", serialize=sweep_data)
