"""Input pieces the ETL API's operations share: a branch by code or id, ids, date ranges."""

from __future__ import annotations

from rest_framework import serializers

from etl import services
from etl.models import Branch

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


def check_range(attrs: dict, *, start="start", end="end", max_days: int | None = None) -> dict:
    services.date_range_validate(start=attrs.get(start), end=attrs.get(end), max_days=max_days,
                                 start_field=start, end_field=end)
    return attrs
