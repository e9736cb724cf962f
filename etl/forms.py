"""Forms of the ETL pages: they validate input; services apply the rules."""

from __future__ import annotations

import json
from datetime import date, timedelta

from django import forms
from django.utils import timezone

from core.models import JobStatus
from etl import conf, services
from etl.models import POS_CHOICES, Branch, FileSource
from etl.parsing import PAYMENTS, SALES

POS_FILTER = [("", "Both"), *((str(number), label) for number, label in POS_CHOICES)]
DATE = forms.DateInput(attrs={"type": "date"})


class _RangeMixin:
    max_days: int | None = None

    def _check_range(self, cleaned, start="start", end="end"):
        try:
            services.date_range_validate(start=cleaned.get(start), end=cleaned.get(end), max_days=self.max_days,
                                         start_field=start, end_field=end)
        except forms.ValidationError as exc:
            self.add_error(None, exc)
        return cleaned


class JobFilterForm(_RangeMixin, forms.Form):
    branch = forms.ModelChoiceField(Branch.objects.order_by("code"), required=False, to_field_name="code",
                                    empty_label="All branches")
    pos = forms.TypedChoiceField(choices=POS_FILTER, required=False, coerce=int, empty_value=None, label="POS")
    status = forms.ChoiceField(choices=[("", "Any status")] + list(JobStatus.choices), required=False)
    start = forms.DateField(required=False, widget=DATE, label="From")
    end = forms.DateField(required=False, widget=DATE, label="To")

    def clean(self):
        return self._check_range(super().clean())


class FetchForm(_RangeMixin, forms.Form):
    branch = forms.ModelChoiceField(Branch.objects.filter(is_active=True).order_by("code"), to_field_name="code",
                                    empty_label=None)
    pos = forms.TypedChoiceField(choices=POS_FILTER, required=False, coerce=int, empty_value=None, label="POS")
    date = forms.DateField(widget=DATE)
    end_date = forms.DateField(required=False, widget=DATE, label="Until (optional, for a range)")
    force = forms.BooleanField(required=False, label="Force: reprocess days already fetched")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["date"].initial = timezone.localdate() - timedelta(days=1)

    def clean(self):
        return self._check_range(super().clean(), start="date", end="end_date")


class MissingForm(_RangeMixin, forms.Form):
    max_days = conf.CALENDAR_MAX_DAYS
    start = forms.DateField(widget=DATE)
    end = forms.DateField(widget=DATE)
    branch = forms.ModelChoiceField(Branch.objects.filter(is_active=True).order_by("code"), required=False,
                                    to_field_name="code", empty_label="All active branches")

    @staticmethod
    def defaults() -> dict:
        end = timezone.localdate() - timedelta(days=1)
        return {"start": end - timedelta(days=29), "end": end}

    def clean(self):
        return self._check_range(super().clean())


def parse_cell(value: str) -> tuple[int, int, date]:
    """'<branch id>:<pos>:<YYYY-MM-DD>' → (branch id, pos, day); which cells may run is services.missing_cells_validate."""
    try:
        branch_id, pos, day = value.split(":")
        cell = (int(branch_id), int(pos), date.fromisoformat(day))
    except ValueError:
        raise forms.ValidationError(f"{value[:40]!r} is not a calendar cell.") from None
    if not 0 < cell[0] < 2**63 or not -2**15 < cell[1] < 2**15:
        raise forms.ValidationError(f"{value[:40]!r} is not a calendar cell.")
    return cell


class CellsForm(forms.Form):
    cell = forms.MultipleChoiceField(required=False)  # choices are free-form; validated in clean_cell

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cell"].valid_value = lambda value: True

    def clean_cell(self):
        return [parse_cell(v) for v in self.cleaned_data.get("cell") or []]


def json_from_text(text: str | None, *, expect: type = dict):
    """A JSON object (or list) given as text, as the pages and the API's form posts send it; None when blank."""
    if not text or not text.strip():
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise forms.ValidationError(f"Not valid JSON: {exc}") from None
    if not isinstance(data, expect):
        raise forms.ValidationError(f"Must be a JSON {'object' if expect is dict else 'list'}.")
    return data


class JSONTextField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "class": "mono"})

    def __init__(self, *, expect=dict, **kwargs):
        self.expect = expect
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, (dict, list)):
            return json.dumps(value, indent=2, ensure_ascii=False)
        return value

    def to_python(self, value):
        data = json_from_text(super().to_python(value), expect=self.expect)
        return self.expect() if data is None else data


WEEKDAYS = [(str(i), name) for i, name in enumerate(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])]


class BranchForm(forms.ModelForm):
    parser_config = JSONTextField(required=False, label="Parser config (overrides of the kind's defaults)")
    closed_weekdays = forms.TypedMultipleChoiceField(choices=WEEKDAYS, coerce=int, required=False,
                                                     widget=forms.CheckboxSelectMultiple)
    closed_dates = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                                   help_text="Extra closed days, YYYY-MM-DD, separated by spaces or commas.")
    source = forms.ModelChoiceField(FileSource.objects.order_by("name"), required=False)

    class Meta:
        model = Branch
        fields = ("code", "name", "is_new_branch", "is_active", "source", "opened_on", "closed_weekdays",
                  "closed_dates", "parser_config")
        widgets = {"opened_on": DATE}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["closed_dates"] = ", ".join(self.instance.closed_dates or [])
            self.initial["closed_weekdays"] = [str(d) for d in self.instance.closed_weekdays or []]

    def clean_closed_dates(self):
        text = self.cleaned_data.get("closed_dates") or ""
        days = []
        for part in text.replace(",", " ").split():
            try:
                days.append(date.fromisoformat(part).isoformat())
            except ValueError:
                raise forms.ValidationError(f"{part[:20]!r} is not a date (YYYY-MM-DD).") from None
        return sorted(set(days))

    def service_data(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class TestParseForm(forms.Form):
    file = forms.FileField(label="Sample file")
    filetype = forms.ChoiceField(choices=[(SALES, f"{SALES} — sales lines"), (PAYMENTS, f"{PAYMENTS} — payments")])
    is_new_branch = forms.BooleanField(required=False, label="New branch dialect")
    parser_config = JSONTextField(required=False, label="Parser config to try")


class RecordFilterForm(_RangeMixin, forms.Form):
    start = forms.DateField(required=False, widget=DATE, label="From")
    end = forms.DateField(required=False, widget=DATE, label="To")
    branch = forms.ModelChoiceField(Branch.objects.order_by("code"), required=False, to_field_name="code",
                                    empty_label="All branches")
    pos = forms.TypedChoiceField(choices=POS_FILTER, required=False, coerce=int, empty_value=None, label="POS")
    item = forms.CharField(required=False, max_length=64, label="Item code")

    def clean(self):
        return self._check_range(super().clean())


class FileFilterForm(forms.Form):
    branch = forms.ModelChoiceField(Branch.objects.order_by("code"), required=False, to_field_name="code",
                                    empty_label="All branches")
    job = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1, label="Job #")
    filetype = forms.ChoiceField(choices=[("", "Any type"), (SALES, f"{SALES} (sales)"),
                                          (PAYMENTS, f"{PAYMENTS} (payments)")], required=False, label="Type")


class YearExportForm(forms.Form):
    year = forms.IntegerField(min_value=1990, max_value=2100)
