from rest_framework import serializers

from analyzer import conf, selectors


class UploadInputSerializer(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=True,  # the service answers "The file is empty." itself
        error_messages={"required": "Choose a file to upload (field `file`).",
                        "invalid": "Send the file as multipart form data in the field `file`."},
    )
    auto_analyze = serializers.BooleanField(required=False, default=True)


class ColumnSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField()


class FileInfoSerializer(serializers.Serializer):
    filename = serializers.CharField()
    format = serializers.CharField()
    size = serializers.IntegerField()
    row_count = serializers.IntegerField()
    column_count = serializers.IntegerField()
    columns = ColumnSerializer(many=True)
    preview = serializers.ListField(child=serializers.DictField())
    profile = serializers.ListField(child=serializers.DictField())
    detection = serializers.DictField()
    processing_seconds = serializers.FloatField()


class ProcessingSerializer(serializers.Serializer):
    """The background job that processes an upload (sniff, validate, load, profile)."""

    id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField(help_text="queued | running | succeeded | failed | cancelled")
    stage = serializers.CharField(help_text="sniff | load | profile | save | done | failed")
    progress = serializers.FloatField()
    message = serializers.CharField()
    error = serializers.CharField(help_text="Why the file could not be used (empty unless failed)")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    websocket = serializers.CharField(help_text="Live progress: /ws/analyzer/processings/<job id>/")
    job_websocket = serializers.CharField(help_text="The same path as `websocket` (kept for clients that read it)")


STATUS_HELP = "processing (the upload is being processed) | ready (it can be queried) | failed (see `error`)"


class UploadOutputSerializer(serializers.Serializer):
    session_id = serializers.IntegerField()
    url = serializers.CharField()
    status = serializers.CharField(help_text=STATUS_HELP)
    error = serializers.CharField(allow_blank=True)
    websocket = serializers.CharField()
    processing = ProcessingSerializer(allow_null=True)
    file = FileInfoSerializer(help_text="Filled in once `status` is ready (counts are 0 before)")


class SessionListItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    filename = serializers.CharField()
    created_at = serializers.DateTimeField()
    row_count = serializers.IntegerField()
    column_count = serializers.IntegerField()
    url = serializers.CharField(source="get_absolute_url")
    status = serializers.SerializerMethodField(help_text=STATUS_HELP)

    def get_status(self, session) -> str:
        return selectors.session_status(session=session)


class MessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    seq = serializers.IntegerField()
    event = serializers.CharField()
    role = serializers.CharField()
    answer_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.CharField(allow_null=True)
    data = serializers.DictField()


class SessionDetailSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    created_at = serializers.DateTimeField()
    url = serializers.CharField()
    status = serializers.CharField(help_text=STATUS_HELP)
    error = serializers.CharField(allow_blank=True)
    processing = ProcessingSerializer(allow_null=True)
    websocket = serializers.CharField()
    running = serializers.BooleanField()
    file = FileInfoSerializer()
    messages = MessageSerializer(many=True)


MAX_REQUEST_OVERHEAD = 1024 * 1024


def upload_too_large(content_length) -> str | None:
    try:
        length = int(content_length or 0)
    except (TypeError, ValueError):
        return None
    if length > conf.MAX_UPLOAD_BYTES + MAX_REQUEST_OVERHEAD:
        return f"The upload is too large; the limit is {conf.MAX_UPLOAD_BYTES:,} bytes."
    return None
