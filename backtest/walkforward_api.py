"""REST API of walk-forward optimizations: /api/backtest/walkforwards/ (owner only)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from backtest import selectors, walkforward_services
from backtest.api import CostsInput, _instrument_or_400
from backtest.models import WalkForwardMode
from backtest.serializers import BacktestWalkForwardDetailOutput, BacktestWalkForwardOutput, walkforward_data
from backtest.walkforward import SELECTION_METRICS
from core.api import ErrorSerializer, Pagination, job_cancel_response, paginated_response
from core.permissions import found_or_404

MAX_PART_BARS = 10_000_000


class WalkForwardListCreateApi(APIView):
    pagination_class = Pagination

    class WalkForwardInput(CostsInput):
        symbol = serializers.CharField(max_length=32)
        grid = serializers.DictField()
        mode = serializers.ChoiceField(choices=WalkForwardMode.values, default="rolling")
        in_sample_bars = serializers.IntegerField(min_value=2, max_value=MAX_PART_BARS)
        out_of_sample_bars = serializers.IntegerField(min_value=2, max_value=MAX_PART_BARS)
        step_bars = serializers.IntegerField(min_value=2, max_value=MAX_PART_BARS, required=False, allow_null=True,
                                             default=None, help_text="Default: the out-of-sample length")
        metric = serializers.ChoiceField(choices=list(SELECTION_METRICS), default="sharpe")
        sample = serializers.IntegerField(required=False, allow_null=True, min_value=1, default=None)
        seed = serializers.IntegerField(required=False, default=0, min_value=0, max_value=2**31 - 1)

    @extend_schema(responses=BacktestWalkForwardOutput(many=True), operation_id="backtest_walkforwards_list")
    def get(self, request):
        return paginated_response(self, request, selectors.walkforward_list(user=request.user),
                                  lambda page: [walkforward_data(w) for w in page])

    @extend_schema(request=WalkForwardInput, responses={201: BacktestWalkForwardOutput},
                   operation_id="backtest_walkforwards_create")
    def post(self, request):
        body = self.WalkForwardInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        instrument = _instrument_or_400(data.pop("symbol"))
        walkforward = walkforward_services.walkforward_create(owner=request.user, instrument=instrument, **data)
        walkforward.refresh_from_db()
        return Response(walkforward_data(walkforward), status=status.HTTP_201_CREATED)


class WalkForwardDetailApi(APIView):
    class DetailInput(serializers.Serializer):
        equity = serializers.BooleanField(default=False, help_text="Include the stitched equity curve")

    @extend_schema(parameters=[DetailInput], responses=BacktestWalkForwardDetailOutput,
                   operation_id="backtest_walkforwards_retrieve")
    def get(self, request, pk: int):
        walkforward = found_or_404(selectors.walkforward_get_for_viewer(user=request.user, pk=pk))
        params = self.DetailInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        return Response(walkforward_data(walkforward, detail=True, equity=params.validated_data["equity"]))


class WalkForwardCancelApi(APIView):
    @extend_schema(request=None, responses={202: BacktestWalkForwardOutput, 409: ErrorSerializer},
                   operation_id="backtest_walkforwards_cancel")
    def post(self, request, pk: int):
        walkforward = found_or_404(selectors.walkforward_get_for_viewer(user=request.user, pk=pk))
        return job_cancel_response(job=walkforward, by=request.user, noun="walk-forward", serialize=walkforward_data)
