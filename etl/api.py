"""REST API of the ETL app (token auth). One view per operation; services do the work."""

from __future__ import annotations

import json
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView
from drf_spectacular.utils import OpenApiResponse, OpenApiTypes, extend_schema

from core.api import Pagination, ValidationErrorSerializer, paginated_response
from core.fields import StrictBooleanField, StrictCharField
from core.parsers import BoundedJSONParser
from core.permissions import found_or_404
from etl import conf, selectors, services
from etl.models import POS_NUMBERS, Branch, FetchedFile, FetchJob, FileSource, RecordExport

# --- shared fields ------------------------------------------------------------------

MAX_ID = 2**63 - 1


class BranchField(serializers.SlugRelatedField):
    """A branch given by its code (or its numeric id)."""

    default_error_messages = {"does_not_exist": "No branch with code {value}.", "invalid": "Give a branch code."}

    def __init__(self, **kwargs):
        super().__init__(slug_field="code", queryset=Branch.objects.all(), **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:  # PostgreSQL refuses NUL in text: not a code anyway
            self.fail("invalid")
        if isinstance(data, bool):
            self.fail("invalid")
        # Only ASCII digits name an id ('²'.isdigit() is true too), and only within the database's integers.
        if isinstance(data, int) or (isinstance(data, str) and data.isascii() and data.isdigit()):
            pk = int(data)
            branch = Branch.objects.filter(pk=pk).first() if 0 < pk < 2**63 else None
            if branch is not None:
                return branch
        return super().to_internal_value(data)


def _check_range(attrs: dict, *, start="start", end="end", max_days: int | None = None) -> dict:
    services.date_range_validate(start=attrs.get(start), end=attrs.get(end), max_days=max_days,
                                 start_field=start, end_field=end)
    return attrs


def paginated(view: APIView, request, queryset, serializer_class):
    return paginated_response(view, request, queryset, lambda page: serializer_class(page, many=True).data)


# --- jobs ------------------------------------------------------------------------------


class JobOutput(serializers.ModelSerializer):
    branch = serializers.CharField(source="branch.code")
    owner = serializers.CharField(source="owner.username")
    url = serializers.CharField(source="get_absolute_url")

    class Meta:
        model = FetchJob
        fields = ("id", "branch", "pos", "work_date", "status", "progress", "message", "force", "attempt_count",
                  "records_written", "owner", "created_at", "started_at", "finished_at", "url")


class FileOutput(serializers.ModelSerializer):
    branch = serializers.CharField(source="branch.code")
    download = serializers.SerializerMethodField()

    class Meta:
        model = FetchedFile
        fields = ("id", "job", "branch", "attempt", "filename", "filetype", "chosen", "row_count", "size", "sha256",
                  "uploaded_at", "download")

    def get_download(self, obj) -> str:
        return f"/api/etl/files/{obj.pk}/download/"


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
            return _check_range(attrs, start="date", end="end_date")

    @extend_schema(request=Input, responses={200: OpenApiTypes.OBJECT, 202: OpenApiTypes.OBJECT})
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        pos_list = [v["pos"]] if v.get("pos") else list(POS_NUMBERS)
        results = services.fetch_range(user=request.user, branch=v["branch"], pos_list=pos_list, start=v["date"],
                                       end=v.get("end_date") or v["date"], force=v["force"])
        return _jobs_answer(results)


class JobFilter(serializers.Serializer):
    branch = BranchField(required=False)
    pos = serializers.ChoiceField(choices=POS_NUMBERS, required=False)
    status = serializers.ChoiceField(choices=FetchJob.Status.choices, required=False)
    start = serializers.DateField(required=False)
    end = serializers.DateField(required=False)

    def validate(self, attrs):
        return _check_range(attrs)


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
        job = services.fetch_retry(user=request.user, job=_job(request, pk))
        return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class JobCancelApi(APIView):
    @extend_schema(request=None, responses={202: JobOutput, 400: JOB_STATE_ERROR})
    def post(self, request, pk: int):
        job = services.fetch_cancel(user=request.user, job=_job(request, pk))
        return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)


# --- missing ---------------------------------------------------------------------------


class MissingFilter(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    branch = BranchField(required=False)

    def validate(self, attrs):
        return _check_range(attrs, max_days=conf.CALENDAR_MAX_DAYS)


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
            _check_range(attrs, max_days=conf.CALENDAR_MAX_DAYS)
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
        jobs = services.missing_run(user=request.user, cells=cells)
        body = {"queued": len(jobs), "jobs": [{"id": j.pk, "branch": j.branch.code, "pos": j.pos,
                                               "work_date": j.work_date} for j in jobs]}
        return Response(body, status=status.HTTP_202_ACCEPTED if jobs else status.HTTP_200_OK)


# --- branches --------------------------------------------------------------------------


class BranchSerializer(serializers.ModelSerializer):
    source = serializers.SlugRelatedField(slug_field="name", queryset=FileSource.objects.all(), required=False,
                                          allow_null=True)
    parser_config = serializers.DictField(required=False, help_text="Parser settings (see the ETL README)")
    closed_weekdays = serializers.ListField(child=serializers.IntegerField(min_value=0, max_value=6), required=False)
    closed_dates = serializers.ListField(child=serializers.DateField(), required=False, max_length=1000)
    code = serializers.RegexField(r"^[A-Za-z0-9_-]{1,32}$", error_messages={
        "invalid": "Use 1-32 letters, digits, '-' or '_'."})

    class Meta:
        model = Branch
        fields = ("id", "code", "name", "is_new_branch", "parser_config", "source", "is_active", "opened_on",
                  "closed_weekdays", "closed_dates", "created_at", "updated_at")
        read_only_fields = ("id", "created_at", "updated_at")


class BranchListApi(APIView):
    pagination_class = Pagination

    @extend_schema(responses=BranchSerializer(many=True))
    def get(self, request):
        return paginated(self, request, selectors.branch_list(), BranchSerializer)

    @extend_schema(request=BranchSerializer, responses={200: BranchSerializer, 201: BranchSerializer})
    def post(self, request):
        """Upsert by code (administrators only)."""
        data = BranchSerializer(data=request.data)
        # The code may already exist: validate fields without the model's unique check.
        data.fields["code"].validators = []
        data.is_valid(raise_exception=True)
        branch, created = services.branch_upsert(user=request.user, **data.validated_data)
        return Response(BranchSerializer(branch).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class TestParseApi(APIView):
    parser_classes = [MultiPartParser, FormParser, BoundedJSONParser]

    class Input(serializers.Serializer):
        file = serializers.FileField(allow_empty_file=True)
        filetype = serializers.ChoiceField(choices=("rd5000", "rd5500"), default="rd5000")
        parser_config = serializers.CharField(required=False, allow_blank=True,
                                              help_text="JSON overrides to try instead of the saved ones")
        is_new_branch = StrictBooleanField(required=False, allow_null=True, default=None)

        def to_internal_value(self, data):
            # A form field given twice would silently count only its last value.
            repeated = [name for name in self.fields if hasattr(data, "getlist") and len(data.getlist(name)) > 1]
            if repeated:
                raise serializers.ValidationError({name: ["Give this field once."] for name in repeated})
            return super().to_internal_value(data)

        def validate_parser_config(self, value):
            if not value:
                return None
            try:
                data = json.loads(value)
            except ValueError as exc:
                raise serializers.ValidationError(f"Not valid JSON: {exc}") from None
            if not isinstance(data, dict):
                raise serializers.ValidationError("Must be a JSON object.")
            return data

    @extend_schema(request={"multipart/form-data": Input}, responses=OpenApiTypes.OBJECT)
    def post(self, request, pk: int):
        branch = get_object_or_404(Branch, pk=pk)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        config = v.get("parser_config")
        # A form post omitting the checkbox reads as False; only an explicit value overrides the branch kind.
        given_kind = "is_new_branch" in request.data and v.get("is_new_branch") is not None
        preview = services.branch_test_parse(
            is_new_branch=v["is_new_branch"] if given_kind else branch.is_new_branch,
            parser_config=branch.parser_config if config is None else config,
            filetype=v["filetype"], raw=services.branch_test_parse_sample(v["file"]),
        )
        return Response(preview)


# --- files -----------------------------------------------------------------------------


class FileFilter(serializers.Serializer):
    job = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    job_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    branch = BranchField(required=False)


class FileListApi(APIView):
    pagination_class = Pagination

    @extend_schema(parameters=[FileFilter], responses=FileOutput(many=True))
    def get(self, request):
        filters = FileFilter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        v = dict(filters.validated_data)
        v["job"] = v.get("job") or v.get("job_id")
        return paginated(self, request, selectors.file_list(filters=v), FileOutput)


def file_response(field, filename: str) -> FileResponse:
    try:
        handle = field.open("rb")
    except (FileNotFoundError, OSError, ValueError):
        raise Http404("The file is no longer stored.") from None
    return FileResponse(handle, as_attachment=True, filename=filename)


class FileDownloadApi(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request, pk: int):
        stored = get_object_or_404(FetchedFile, pk=pk)
        return file_response(stored.file, stored.filename)


# --- records ---------------------------------------------------------------------------


class RecordFilter(serializers.Serializer):
    start = serializers.DateField(required=False)
    end = serializers.DateField(required=False)
    year = serializers.IntegerField(required=False, min_value=1990, max_value=2100)
    branch = BranchField(required=False)
    pos = serializers.ChoiceField(choices=POS_NUMBERS, required=False)
    item = StrictCharField(required=False, max_length=64)

    def validate(self, attrs):
        return _check_range(attrs)


class RecordOutput(serializers.Serializer):
    id = serializers.IntegerField()
    branch = serializers.CharField(source="branch.code")
    pos = serializers.IntegerField()
    work_date = serializers.DateField()
    line_no = serializers.IntegerField()
    tnsc = serializers.CharField()
    sale_date = serializers.DateField()
    sale_time = serializers.TimeField()
    item_code = serializers.CharField()
    department = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=14, decimal_places=3)
    amount = serializers.DecimalField(max_digits=16, decimal_places=2)
    payment_method = serializers.CharField()


def filters_for_storage(v: dict) -> dict:
    """Validated filters → JSON for the export job."""
    out = {}
    for key, value in v.items():
        if value in (None, ""):
            continue
        out[key] = value.pk if isinstance(value, Branch) else (value.isoformat() if hasattr(value, "isoformat") else value)
    return out


class RecordListApi(APIView):
    pagination_class = Pagination

    @extend_schema(parameters=[RecordFilter], responses=RecordOutput(many=True))
    def get(self, request):
        filters = RecordFilter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return paginated(self, request, selectors.record_list(filters=filters.validated_data), RecordOutput)


class ExportOutput(serializers.ModelSerializer):
    download = serializers.SerializerMethodField()

    class Meta:
        model = RecordExport
        fields = ("id", "status", "progress", "message", "error", "filters", "row_count", "created_at",
                  "finished_at", "download")

    def get_download(self, obj) -> str | None:
        return f"/api/etl/exports/{obj.pk}/download/" if obj.file else None


class RecordExportApi(APIView):
    """Queue a CSV export of the filtered records (e.g. `{"year": 2025}` for one combined file of the year).

    POST only: a GET never starts a job (a link on another site could trigger it). The filters come in the
    body, or in the query string when the body is empty.
    """

    # The schema lists the body only: a query string is read only when the body is empty, so a
    # client sending both would find its query ignored.
    @extend_schema(request=RecordFilter, responses={202: ExportOutput})
    def post(self, request):
        if not isinstance(request.data, dict):  # a JSON body that is not an object (a form is a QueryDict, a dict)
            raise serializers.ValidationError({"detail": ["Send the filters as a JSON object."]})
        params = request.data or request.query_params
        filters = RecordFilter(data=params)
        filters.is_valid(raise_exception=True)
        export = services.record_export_create(user=request.user, filters=filters_for_storage(filters.validated_data))
        return Response(ExportOutput(export).data, status=status.HTTP_202_ACCEPTED)


class ExportDetailApi(APIView):
    @extend_schema(responses=ExportOutput)
    def get(self, request, pk: int):
        return Response(ExportOutput(found_or_404(selectors.record_export_get_for_viewer(user=request.user, pk=pk))).data)


class ExportDownloadApi(APIView):
    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.BINARY})
    def get(self, request, pk: int):
        export = found_or_404(selectors.record_export_get_for_viewer(user=request.user, pk=pk))
        if not export.file:
            raise Http404("The export has no file yet.")
        return file_response(export.file, export.file.name.rsplit("/", 1)[-1])

