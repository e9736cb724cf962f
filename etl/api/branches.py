"""Branches: list, upsert by code, and trying a parser config on a sample file."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView
from drf_spectacular.utils import OpenApiTypes, extend_schema

from core.api import Pagination
from core.fields import StrictBooleanField
from core.parsers import BoundedJSONParser
from etl import selectors, services
from etl.api.responses import paginated
from etl.forms import json_from_text
from etl.models import Branch, FileSource
from etl.parsing import FILE_TYPES, SALES


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
        filetype = serializers.ChoiceField(choices=FILE_TYPES, default=SALES)
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
            return json_from_text(value)

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
