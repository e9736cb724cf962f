"""Input shapes (shared by the API and the HTMX page) and output shapes; the rules are `ExportParams.clean`."""

from __future__ import annotations

import math

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from trades import expressions
from trades.models import Exchange, Export, ExportFormat
from trades.params import (
    AGGREGATE_FUNCTIONS,
    BUCKETS_NS,
    MAX_OPERATIONS,
    SORT_ALIASES,
    SORT_CHOICES,
    ExportParams,
)

class BlankIsNullMixin:
    """An empty form input means "no bound", like null."""

    def run_validation(self, data=serializers.empty):
        if isinstance(data, str) and not data.strip():
            data = None
        return super().run_validation(data)


class FiniteFloatField(BlankIsNullMixin, serializers.FloatField):
    default_error_messages = {"invalid": "Enter a number.", "not_finite": "Enter a finite number."}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("not_finite")
        return value


class OptionalIntegerField(BlankIsNullMixin, serializers.IntegerField):
    default_error_messages = {"invalid": "Enter a whole number."}


class OptionalDateField(BlankIsNullMixin, serializers.DateField):
    default_error_messages = {"invalid": "Enter a date as YYYY-MM-DD."}


@extend_schema_field(
    {"type": "object", "properties": {"expression": {"type": "string", "example": "PRICE*SIZE"}},
     "required": ["expression"]}
)
class ExpressionField(serializers.Field):
    """`{"expression": "PRICE*2"}` or just `"PRICE*2"` → normalized text."""

    default_error_messages = {"invalid": "Give each operation as an object with an expression text, e.g. {{\"expression\": \"PRICE*SIZE\"}}."}

    def to_internal_value(self, data):
        if isinstance(data, dict):
            data = data.get("expression")
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            expressions.parse(data)
        except expressions.ExpressionError as exc:
            raise serializers.ValidationError(f"{data!r}: {exc}") from None
        return expressions.normalize(data)

    def to_representation(self, value):
        return {"expression": value}


class ExportRequestSerializer(serializers.Serializer):
    exchanges = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=2**31 - 1), required=False, max_length=200
    )
    tickers = serializers.ListField(child=serializers.CharField(max_length=16), required=False, max_length=1000)
    pricelow = FiniteFloatField(required=False, allow_null=True, min_value=0)
    pricehigh = FiniteFloatField(required=False, allow_null=True, min_value=0)
    sizelow = OptionalIntegerField(required=False, allow_null=True, min_value=0, max_value=2**62)
    sizehigh = OptionalIntegerField(required=False, allow_null=True, min_value=0, max_value=2**62)
    datelow = OptionalDateField(required=False, allow_null=True)
    datehigh = OptionalDateField(required=False, allow_null=True)
    operations = serializers.ListField(child=ExpressionField(), required=False, max_length=MAX_OPERATIONS)
    sortby = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    aggregateby = serializers.ChoiceField(
        choices=list(BUCKETS_NS), required=False, allow_null=True, allow_blank=True
    )
    aggregate_fn = serializers.ChoiceField(choices=list(AGGREGATE_FUNCTIONS), required=False, default="sum")
    format = serializers.ChoiceField(choices=ExportFormat.choices, required=False, default=ExportFormat.CSV)

    def validate_sortby(self, value):
        if value in (None, ""):
            return None
        value = SORT_ALIASES.get(value, value)
        if value not in SORT_CHOICES:
            raise serializers.ValidationError(f"Choose one of: {', '.join(SORT_CHOICES)}.")
        return value

    def to_params(self) -> ExportParams:
        """The request as given; the service and the preview apply the rules (`ExportParams.clean`)."""
        data = self.validated_data
        aggregateby = data.get("aggregateby") or None
        return ExportParams(
            exchanges=tuple(data.get("exchanges") or ()),
            tickers=tuple(data.get("tickers") or ()),
            pricelow=data.get("pricelow"),
            pricehigh=data.get("pricehigh"),
            sizelow=data.get("sizelow"),
            sizehigh=data.get("sizehigh"),
            datelow=data.get("datelow"),
            datehigh=data.get("datehigh"),
            operations=tuple(data.get("operations") or ()),
            sortby=None if aggregateby else (data.get("sortby") or "time_desc"),
            aggregateby=aggregateby,
            aggregate_fn=(data.get("aggregate_fn") or "sum") if aggregateby else "sum",
            format=data.get("format") or ExportFormat.CSV,
        )


class PreviewRequestSerializer(ExportRequestSerializer):
    cursor = serializers.CharField(required=False, allow_blank=True, max_length=500)


class ExchangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Exchange
        fields = ["id", "name", "acronym", "mic"]


class ExportSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()
    available = serializers.BooleanField(source="is_available", read_only=True)
    message = serializers.CharField(source="status_message", read_only=True)
    queue_position = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = Export
        fields = [
            "id", "status", "progress", "message", "error", "format", "params", "estimated_rows",
            "rows_written", "size_bytes", "sha256", "created_at", "started_at", "finished_at",
            "expired_at", "cancel_requested", "available", "download_url", "queue_position",
        ]
        read_only_fields = fields

    def get_download_url(self, obj) -> str | None:
        if not obj.is_available:
            return None
        from django.urls import reverse

        return reverse("trades-api:export-download", args=[obj.pk])
