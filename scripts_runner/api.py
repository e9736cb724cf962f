"""REST API: one view per operation; rules live in services/selectors."""

from django.http import Http404, StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers as drf_serializers
from rest_framework import status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import Pagination, paginated_response
from core.parsers import BoundedJSONParser
from scripts_runner import conf, selectors, services
from scripts_runner.serializers import (
    LogChunkSerializer,
    RunOutputSerializer,
    RunStartSerializer,
    ScriptDetailSerializer,
    ScriptOutputSerializer,
    ScriptCodeUpdateSerializer,
    ScriptCodeUploadSerializer,
    ScriptFileUploadSerializer,
    ScriptUploadSerializer,
)


def _script_or_404(request, pk):
    script = selectors.script_get(user=request.user, pk=pk)
    if script is None:
        raise Http404("Not found.")
    return script


def _run_or_404(request, pk):
    run = selectors.run_get_for_viewer(user=request.user, pk=pk)
    if run is None:
        raise Http404("Not found.")
    return run


def _paginate(request, view, queryset, serializer_class):
    return paginated_response(view, request, queryset, lambda page: serializer_class(page, many=True).data)


def read_upload(upload) -> bytes:
    limit = conf.MAX_SCRIPT_BYTES
    if upload.size is not None and upload.size > limit:
        from django.core.exceptions import ValidationError

        raise ValidationError({"file": f"The script is {upload.size:,} bytes; the limit is {limit:,} bytes."})
    return upload.read()


# The code as a file (multipart) or as text (JSON); form fields carry no file, so that one is not listed.
SCRIPT_UPLOAD = {"multipart/form-data": ScriptFileUploadSerializer, "application/json": ScriptCodeUploadSerializer}
SCRIPT_UPDATE = {"multipart/form-data": ScriptFileUploadSerializer, "application/json": ScriptCodeUpdateSerializer}


class ScriptListCreateApi(APIView):
    parser_classes = [MultiPartParser, FormParser, BoundedJSONParser]
    pagination_class = Pagination

    @extend_schema(responses=ScriptOutputSerializer(many=True))
    def get(self, request):
        return _paginate(request, self, selectors.script_list(user=request.user), ScriptOutputSerializer)

    @extend_schema(request=SCRIPT_UPLOAD, responses={201: ScriptDetailSerializer})
    def post(self, request):
        data = ScriptUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data.get("file")
        if upload is not None:
            code = read_upload(upload)
            name = data.validated_data.get("name") or upload.name
        else:
            code = data.validated_data["code"].encode("utf-8")
            name = data.validated_data["name"]
        script = services.script_create(owner=request.user, name=name, code=code)
        body = ScriptDetailSerializer(script, context={"code": code.decode("utf-8")}).data
        return Response(body, status=status.HTTP_201_CREATED)


class ScriptDetailApi(APIView):
    parser_classes = [MultiPartParser, FormParser, BoundedJSONParser]

    @extend_schema(responses=ScriptDetailSerializer)
    def get(self, request, pk):
        script = _script_or_404(request, pk)
        return Response(ScriptDetailSerializer(script, context={"code": selectors.script_code(script=script)}).data)

    @extend_schema(request=SCRIPT_UPDATE, responses=ScriptDetailSerializer)
    def put(self, request, pk):
        script = _script_or_404(request, pk)
        data = ScriptUploadSerializer(data=request.data, context={"default_name": script.name})
        data.is_valid(raise_exception=True)
        upload = data.validated_data.get("file")
        code = read_upload(upload) if upload is not None else data.validated_data["code"].encode("utf-8")
        script = services.script_update(script=script, code=code, name=data.validated_data.get("name") or None)
        return Response(ScriptDetailSerializer(script, context={"code": code.decode("utf-8")}).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        script = _script_or_404(request, pk)
        services.script_delete(script=script, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ScriptRunsApi(APIView):
    parser_classes = [BoundedJSONParser, FormParser, MultiPartParser]
    pagination_class = Pagination

    @extend_schema(responses=RunOutputSerializer(many=True))
    def get(self, request, pk):
        script = _script_or_404(request, pk)
        return _paginate(request, self, selectors.run_list(user=request.user, script=script), RunOutputSerializer)

    @extend_schema(request=RunStartSerializer, responses={201: RunOutputSerializer})
    def post(self, request, pk):
        script = _script_or_404(request, pk)
        data = RunStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = services.script_run_create(script=script, user=request.user, **data.validated_data)
        return Response(RunOutputSerializer(run).data, status=status.HTTP_201_CREATED)


class RunListApi(APIView):
    pagination_class = Pagination

    @extend_schema(responses=RunOutputSerializer(many=True))
    def get(self, request):
        return _paginate(request, self, selectors.run_list(user=request.user), RunOutputSerializer)


class RunDetailApi(APIView):
    @extend_schema(responses=RunOutputSerializer)
    def get(self, request, pk):
        return Response(RunOutputSerializer(_run_or_404(request, pk)).data)


class RunCancelApi(APIView):
    @extend_schema(request=None, responses={202: RunOutputSerializer})
    def post(self, request, pk):
        run = services.script_run_cancel(run=_run_or_404(request, pk), by=request.user)
        return Response(RunOutputSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class _LogPageSerializer(drf_serializers.Serializer):
    chunks = LogChunkSerializer(many=True)
    last_seq = drf_serializers.IntegerField()
    finished = drf_serializers.BooleanField()
    status = drf_serializers.CharField()


class RunLogApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("after", {"type": "integer", "minimum": 0},
                                     description="Return the chunks after this seq as JSON")],
        responses={(200, "text/plain"): str, (200, "application/json"): _LogPageSerializer},
    )
    def get(self, request, pk):
        run = _run_or_404(request, pk)
        after = request.query_params.get("after")
        if after is None:
            response = StreamingHttpResponse(selectors.log_text(run=run), content_type="text/plain; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="run-{run.pk}.log"'
            return response
        try:
            after_seq = int(after)
            if after_seq < 0:
                raise ValueError
        except ValueError:
            from rest_framework.exceptions import ValidationError

            raise ValidationError({"after": "`after` must be a non-negative integer (a chunk seq)."})
        chunks = selectors.log_chunks_after(run=run, after=after_seq)
        return Response(
            {
                "chunks": LogChunkSerializer(chunks, many=True).data,
                "last_seq": chunks[-1].seq if chunks else after_seq,
                "finished": run.is_finished and len(chunks) < selectors.LOG_PAGE,
                "status": run.status,
            }
        )
