"""The missing-data calendar: read it, and queue its missing days."""

from __future__ import annotations

from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView
from drf_spectacular.utils import OpenApiTypes, extend_schema

from etl import conf, selectors, services
from etl.api.fields import BranchField, check_range


class MissingFilter(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    branch = BranchField(required=False)

    def validate(self, attrs):
        return check_range(attrs, max_days=conf.CALENDAR_MAX_DAYS)


def _calendar(v: dict) -> dict:
    branches = [v["branch"]] if v.get("branch") else None
    return selectors.missing_calendar(start=v["start"], end=v["end"], branches=branches)


class MissingApi(APIView):
    @extend_schema(parameters=[MissingFilter], responses=OpenApiTypes.OBJECT)
    def get(self, request):
        filters = MissingFilter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        calendar = _calendar(filters.validated_data)
        by_state: dict[str, dict] = {"missing": {}, "failed": {}, "running": {}}
        for row in calendar["rows"]:
            for cell in row["cells"]:
                if cell["state"] in by_state:
                    by_state[cell["state"]].setdefault(row["branch"].code, {}).setdefault(str(row["pos"]), []).append(
                        cell["date"].isoformat())
        return Response({"start": calendar["start"], "end": calendar["end"], **by_state, "totals": calendar["totals"]})


class MissingRunApi(APIView):
    class Input(serializers.Serializer):
        branches_missing = serializers.DictField(
            required=False, help_text='{"B01": {"1": ["2025-01-02", …], "2": […]}}',
            child=serializers.DictField(child=serializers.ListField(child=serializers.DateField(), max_length=400)),
        )
        start = serializers.DateField(required=False)
        end = serializers.DateField(required=False)
        all_missing = serializers.BooleanField(default=False, help_text="Queue every missing/failed day of start..end")

        def validate(self, attrs):
            check_range(attrs, max_days=conf.CALENDAR_MAX_DAYS)
            if attrs["all_missing"]:
                if not (attrs.get("start") and attrs.get("end")):
                    raise serializers.ValidationError({"start": "Give start and end with all_missing."})
            elif not attrs.get("branches_missing"):
                raise serializers.ValidationError({"branches_missing": "Give the days to fetch, or all_missing."})
            return attrs

    @extend_schema(request=Input, responses={200: OpenApiTypes.OBJECT, 202: OpenApiTypes.OBJECT})
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        cells = services.missing_cells_by_code(branches_missing=v.get("branches_missing") or {})
        if v["all_missing"]:
            cells += selectors.missing_cells(calendar=_calendar(v))
            if not cells:
                return Response({"queued": 0, "jobs": []}, status=status.HTTP_200_OK)
        jobs = services.fetch_job_request_missing(user=request.user, cells=cells)
        body = {"queued": len(jobs), "jobs": [{"id": j.pk, "branch": j.branch.code, "pos": j.pos,
                                               "work_date": j.work_date} for j in jobs]}
        return Response(body, status=status.HTTP_202_ACCEPTED if jobs else status.HTTP_200_OK)
