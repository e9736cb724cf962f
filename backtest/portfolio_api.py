"""REST API of portfolio runs under /api/backtest/portfolios/: list, create, detail, cancel (owner and staff)."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from backtest import portfolio_services, selectors
from backtest.api import CostsInput, _instrument_or_400
from backtest.models import Portfolio
from backtest.portfolio_engine import MODES, PORTFOLIO_RULES, REBALANCE_PERIODS, WEIGHTINGS
from backtest.serializers import BacktestCostFieldsOutput, _iso, cost_fields, job_fields
from backtest.strategies import STRATEGIES
from core.api import ErrorSerializer, Pagination, job_cancel_response, paginated_response
from core.permissions import found_or_404


def portfolio_data(portfolio: Portfolio, *, detail: bool = False, equity: bool = False) -> dict:
    data = {
        **job_fields(portfolio),
        "symbols": sorted(i.symbol for i in portfolio.instruments.all()),
        "interval": portfolio.interval,
        "start": _iso(portfolio.start),
        "end": _iso(portfolio.end),
        "mode": portfolio.mode,
        "weighting": portfolio.weighting,
        "rebalance": portfolio.rebalance,
        "vol_window": portfolio.vol_window,
        "strategy": portfolio.strategy,
        "params": portfolio.params,
        **cost_fields(portfolio),
        "url": reverse("api-backtest-portfolio-detail", args=[portfolio.pk]),
    }
    if portfolio.metrics:
        data["metrics"] = portfolio.metrics
    if detail and portfolio.metrics:
        data.update({
            "rules": PORTFOLIO_RULES, "bar_count": portfolio.bar_count, "orders": portfolio.orders,
            "compute_ms": portfolio.compute_ms,
            "contributions": portfolio.contributions, "allocation": portfolio.allocation,
            "trades": portfolio.trades, "open_positions": portfolio.open_positions,
        })
        if equity:
            data["equity"] = portfolio.equity
    return data


class BacktestPortfolioOutput(BacktestCostFieldsOutput):
    symbols = serializers.ListField(child=serializers.CharField())
    interval = serializers.CharField()
    start = serializers.DateTimeField(allow_null=True)
    end = serializers.DateTimeField(allow_null=True)
    mode = serializers.ChoiceField(choices=MODES)
    weighting = serializers.ChoiceField(choices=WEIGHTINGS)
    rebalance = serializers.ChoiceField(choices=REBALANCE_PERIODS)
    vol_window = serializers.IntegerField()
    strategy = serializers.CharField(allow_blank=True)
    params = serializers.DictField()
    url = serializers.CharField()
    metrics = serializers.DictField(required=False, help_text="Once computed: the single runs' metric set")


class BacktestPortfolioDetailOutput(BacktestPortfolioOutput):
    rules = serializers.ListField(child=serializers.CharField(), required=False)
    bar_count = serializers.IntegerField(required=False)
    orders = serializers.IntegerField(required=False)
    compute_ms = serializers.FloatField(required=False)
    contributions = serializers.ListField(child=serializers.DictField(), required=False,
                                          help_text="Per instrument: pnl, contribution_pct, trades, commissions, …")
    allocation = serializers.DictField(required=False, help_text="{t, symbols, weights per symbol, cash}: shares "
                                                                 "of equity over time")
    trades = serializers.ListField(child=serializers.DictField(), required=False)
    open_positions = serializers.ListField(child=serializers.DictField(), required=False)
    equity = serializers.DictField(required=False, help_text="With ?equity=1: {t, equity}")


class PortfolioListCreateApi(APIView):
    pagination_class = Pagination

    class PortfolioInput(CostsInput):
        strategy = serializers.ChoiceField(choices=list(STRATEGIES), required=False, allow_blank=True, default="")
        symbols = serializers.ListField(child=serializers.CharField(max_length=32), min_length=2, max_length=100)
        mode = serializers.ChoiceField(choices=MODES, default="signals")
        weighting = serializers.ChoiceField(choices=WEIGHTINGS, default="equal")
        rebalance = serializers.ChoiceField(choices=REBALANCE_PERIODS, default="monthly")
        vol_window = serializers.IntegerField(min_value=2, max_value=5000, default=30)
        params = serializers.DictField(required=False, default=dict)

    @extend_schema(responses=BacktestPortfolioOutput(many=True), operation_id="backtest_portfolios_list")
    def get(self, request):
        return paginated_response(self, request, selectors.portfolio_list(user=request.user),
                                  lambda page: [portfolio_data(p) for p in page])

    @extend_schema(request=PortfolioInput, responses={201: BacktestPortfolioOutput},
                   operation_id="backtest_portfolios_create")
    def post(self, request):
        body = self.PortfolioInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        instruments = [_instrument_or_400(s, "symbols") for s in data.pop("symbols")]
        portfolio = portfolio_services.portfolio_create(owner=request.user, instruments=instruments, **data)
        portfolio.refresh_from_db()
        return Response(portfolio_data(portfolio), status=status.HTTP_201_CREATED)


class PortfolioDetailApi(APIView):
    class DetailInput(serializers.Serializer):
        equity = serializers.BooleanField(default=False, help_text="Include the equity curve")

    @extend_schema(parameters=[DetailInput], responses=BacktestPortfolioDetailOutput,
                   operation_id="backtest_portfolios_retrieve")
    def get(self, request, pk: int):
        portfolio = found_or_404(selectors.portfolio_get_for_viewer(user=request.user, pk=pk))
        params = self.DetailInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        return Response(portfolio_data(portfolio, detail=True, equity=params.validated_data["equity"]))


class PortfolioCancelApi(APIView):
    @extend_schema(request=None, responses={202: BacktestPortfolioOutput, 409: ErrorSerializer},
                   operation_id="backtest_portfolios_cancel")
    def post(self, request, pk: int):
        portfolio = found_or_404(selectors.portfolio_get_for_viewer(user=request.user, pk=pk))
        return job_cancel_response(job=portfolio, by=request.user, noun="portfolio run", serialize=portfolio_data)
