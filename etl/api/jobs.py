"""Fetch jobs: queue fetches, list, detail, retry, cancel."""

from __future__ import annotations

from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView
from drf_spectacular.utils import OpenApiResponse, OpenApiTypes, extend_schema

from core.api import Pagination, ValidationErrorSerializer
from core.fields import StrictBooleanField
from core.permissions import found_or_404
from etl import selectors, services
from etl.api.fields import BranchField, check_range
from etl.api.files import FileOutput
from etl.api.responses import paginated
from etl.models import POS_NUMBERS, FetchJob


class JobOutput(serializers.ModelSerializer):
    branch = serializers.CharField(source="branch.code")
    owner = serializers.CharField(source="owner.username")
    url = serializers.CharField(source="get_absolute_url")

    class Meta:
        model = FetchJob
        fields = ("id", "branch", "pos", "work_date", "status", "progress", "message", "force", "attempt_count",
                  "records_written", "owner", "created_at", "started_at", "finished_at", "url")


class JobDetailOutput(JobOutput):
    files = FileOutput(many=True, read_only=True)
    audit = serializers.SerializerMethodField()

    class Meta(JobOutput.Meta):
        fields = JobOutput.Meta.fields + ("error", "file_list", "chosen_files", "counts", "rejected_examples",
                                          "records_before", "processor_version", "files", "audit")

    def get_audit(self, job) -> list[dict]:
        return [
            {"at": a.created_at, "action": a.action, "actor": a.actor.username if a.actor else None, "detail": a.detail}
            for a in selectors.audit_for_job(job=job)
        ]


def _jobs_answer(results: list[tuple[FetchJob, bool]]) -> Response:
    queued = [job for job, now in results if now]
    body = {
        "job_id": results[0][0].pk if results else None,
        "queued": len(queued),
        "jobs": [{"id": job.pk, "branch": job.branch.code, "pos": job.pos, "work_date": job.work_date,
                  "status": job.status, "queued": now} for job, now in results],
    }
    return Response(body, status=status.HTTP_202_ACCEPTED if queued else status.HTTP_200_OK)


class FetchApi(APIView):
    class Input(serializers.Serializer):
        branch = BranchField()
        pos = serializers.ChoiceField(choices=POS_NUMBERS, required=False, allow_null=True,
                                      help_text="1 or 2; omitted = both terminals")
        date = serializers.DateField()
        end_date = serializers.DateField(required=False, allow_null=True, help_text="Fetch the range date..end_date")
        force = StrictBooleanField(default=False)

        def validate(self, attrs):
            return check_range(attrs, start="date", end="end_date")

    @extend_schema(request=Input, responses={200: OpenApiTypes.OBJECT, 202: OpenApiTypes.OBJECT})
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        pos_list = [v["pos"]] if v.get("pos") else list(POS_NUMBERS)
        results = services.fetch_job_request_range(user=request.user, branch=v["branch"], pos_list=pos_list, start=v["date"],
                                       end=v.get("end_date") or v["date"], force=v["force"])
        return _jobs_answer(results)


class JobFilter(serializers.Serializer):
    branch = BranchField(required=False)
    pos = serializers.ChoiceField(choices=POS_NUMBERS, required=False)
    status = serializers.ChoiceField(choices=FetchJob.Status.choices, required=False)
    start = serializers.DateField(required=False)
    end = serializers.DateField(required=False)

    def validate(self, attrs):
        return check_range(attrs)


class JobListApi(APIView):
    pagination_class = Pagination

    @extend_schema(parameters=[JobFilter], responses=JobOutput(many=True))
    def get(self, request):
        filters = JobFilter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return paginated(self, request, selectors.fetch_job_list(user=request.user, filters=filters.validated_data), JobOutput)


def _job(request, pk) -> FetchJob:
    return found_or_404(selectors.fetch_job_get_for_viewer(user=request.user, pk=pk))


class JobDetailApi(APIView):
    @extend_schema(responses=JobDetailOutput)
    def get(self, request, pk: int):
        return Response(JobDetailOutput(_job(request, pk)).data)


JOB_STATE_ERROR = OpenApiResponse(
    ValidationErrorSerializer, description="The job's state does not allow this (`status` says why)"
)


class JobRetryApi(APIView):
    @extend_schema(request=None, responses={202: JobOutput, 400: JOB_STATE_ERROR})
    def post(self, request, pk: int):
        job = services.fetch_job_retry(user=request.user, job=_job(request, pk))
        return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class JobCancelApi(APIView):
    @extend_schema(request=None, responses={202: JobOutput, 400: JOB_STATE_ERROR})
    def post(self, request, pk: int):
        job = services.fetch_job_cancel(user=request.user, job=_job(request, pk))
        return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)
