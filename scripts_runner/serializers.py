from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.fields import StrictCharField

from scripts_runner.models import LogChunk, Script, ScriptRun


class ScriptOutputSerializer(serializers.ModelSerializer):
    latest_run_id = serializers.IntegerField(read_only=True, allow_null=True, required=False)
    latest_status = serializers.CharField(read_only=True, allow_null=True, required=False)

    class Meta:
        model = Script
        fields = ["id", "name", "sha256", "size", "created_at", "updated_at", "latest_run_id", "latest_status"]


class ScriptDetailSerializer(ScriptOutputSerializer):
    code = serializers.SerializerMethodField()

    class Meta(ScriptOutputSerializer.Meta):
        fields = ScriptOutputSerializer.Meta.fields + ["code"]

    def get_code(self, obj) -> str | None:
        """The code; null when the store no longer holds the script's file (save the code again)."""
        return self.context.get("code", "")


class ScriptUploadSerializer(serializers.Serializer):
    file = serializers.FileField(required=False, allow_empty_file=True,
                                 help_text="The .py file (multipart). Either `file` or `code`.")
    code = StrictCharField(required=False, allow_blank=True, trim_whitespace=False,
                           help_text="The code as text, instead of a file.")
    name = serializers.CharField(required=False, allow_blank=True, max_length=200,
                                 help_text="Defaults to the uploaded file's name.")

    def validate(self, attrs):
        if not attrs.get("file") and "code" not in attrs:
            raise serializers.ValidationError({"file": "Upload a .py file in `file` (or send the code in `code`)."})
        if attrs.get("file") and "code" in attrs:
            raise serializers.ValidationError({"code": "Send either `file` or `code`, not both."})
        if not attrs.get("file") and not attrs.get("name") and not self.context.get("default_name"):
            raise serializers.ValidationError({"name": "Give the script a name ending in .py."})
        return attrs


SCRIPT_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,96}\.py$"  # scripts_runner.validators.NAME_RE


@extend_schema_field({"anyOf": [{"type": "string", "pattern": SCRIPT_NAME_PATTERN}, {"type": "string", "maxLength": 0}]})
class OptionalScriptNameField(serializers.CharField):
    """A new name, or empty (or left out) to keep the current one."""


class ScriptFileUploadSerializer(serializers.Serializer):
    """The API schema of an upload as a file (validation is ScriptUploadSerializer's and the services')."""

    file = serializers.FileField(help_text="The .py file: UTF-8 Python that compiles")
    name = OptionalScriptNameField(required=False, allow_blank=True, help_text="Empty or left out: the file's name")


class ScriptCodeUploadSerializer(serializers.Serializer):
    """The API schema of an upload as text."""

    code = serializers.CharField(trim_whitespace=False, help_text="UTF-8 Python that compiles")
    name = serializers.RegexField(SCRIPT_NAME_PATTERN, help_text="Required on create; defaults to the current name on update")


class ScriptCodeUpdateSerializer(ScriptCodeUploadSerializer):
    name = OptionalScriptNameField(required=False, allow_blank=True, help_text="Empty or left out: keep the name")


class RunStartSerializer(serializers.Serializer):
    args = serializers.ListField(child=serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=4096),
                                 required=False, default=list, max_length=50)
    env = serializers.DictField(child=serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=4096),
                                required=False, default=dict)
    network = serializers.BooleanField(
        required=False, default=False,
        help_text="Give the run network (its own namespace behind NAT; the host, private and link-local addresses "
                  "are refused). Needs the network permission; off unless asked for.")


class RunOutputSerializer(serializers.ModelSerializer):
    script_name = serializers.CharField(source="script.name", read_only=True)
    owner = serializers.CharField(source="owner.username", read_only=True)
    cancelled_by = serializers.SerializerMethodField()
    end_description = serializers.CharField(read_only=True)
    duration_seconds = serializers.SerializerMethodField()
    log_url = serializers.SerializerMethodField()
    ws_path = serializers.SerializerMethodField()

    class Meta:
        model = ScriptRun
        fields = [
            "id", "script", "script_name", "owner", "status", "message", "error", "end_reason", "end_description",
            "exit_code", "args", "env", "network", "sandboxed", "script_sha256", "created_at", "started_at",
            "finished_at", "duration_seconds", "output_lines", "output_bytes", "truncated", "log_removed_at",
            "cancel_requested", "cancelled_by", "log_url", "ws_path",
        ]

    def get_cancelled_by(self, obj) -> str | None:
        return obj.cancelled_by.username if obj.cancelled_by_id else None

    def get_duration_seconds(self, obj) -> float | None:
        return obj.duration.total_seconds() if obj.duration else None

    def get_log_url(self, obj) -> str:
        return reverse("scripts_runner_api:run_log", args=[obj.pk])

    def get_ws_path(self, obj) -> str:
        from scripts_runner.consumers import RunLogStream

        return RunLogStream.path(obj.pk)


class LogChunkSerializer(serializers.ModelSerializer):
    lines = serializers.SerializerMethodField()

    class Meta:
        model = LogChunk
        fields = ["seq", "stream", "first_line", "lines"]

    def get_lines(self, obj) -> list[str]:
        return obj.lines()
