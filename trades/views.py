"""HTMX pages of trades: the query page and its fragments, export pages, downloads."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone as dj_timezone
from django.views.decorators.http import require_GET, require_POST

from core.permissions import found_or_404
from trades import conf, expressions, selectors, services, slots
from trades.consumers import ExportStream
from trades.downloads import export_file_response
from trades.models import Export, ExportFormat
from trades.params import AGGREGATE_FUNCTIONS, BUCKET_LABELS, SORT_CHOICES
from trades.serializers import ExportRequestSerializer, ExportSerializer, PreviewRequestSerializer

SCALAR_FIELDS = [
    "pricelow", "pricehigh", "sizelow", "sizehigh", "datelow", "datehigh", "sortby", "aggregateby",
    "aggregate_fn", "format", "cursor",
]
FIELD_LABELS = {
    "exchanges": "Exchanges", "tickers": "Tickers", "pricelow": "Min price", "pricehigh": "Max price",
    "sizelow": "Min size", "sizehigh": "Max size", "datelow": "Start date", "datehigh": "End date",
    "operations": "Expressions", "sortby": "Sort by", "aggregateby": "Aggregate by",
    "aggregate_fn": "Aggregate with", "format": "Format", "cursor": "Page", "non_field_errors": "Request",
}


def _form_data(post) -> dict:
    data = {name: post.get(name) for name in SCALAR_FIELDS if name in post}
    data["exchanges"] = [v for v in post.getlist("exchanges") if v != ""]
    data["tickers"] = [v for v in post.getlist("tickers") if v != ""]
    data["operations"] = [{"expression": v} for v in post.getlist("operations")]
    return data


def _errors(errors) -> list[tuple[str, str]]:
    """Serializer errors or a service's ValidationError → (label, message) pairs for the page."""
    if isinstance(errors, ValidationError):
        errors = errors.message_dict if hasattr(errors, "error_dict") else {"non_field_errors": errors.messages}
    elif not isinstance(errors, dict):
        errors = errors.errors
    out = []
    for field, messages in errors.items():
        if isinstance(messages, dict):  # list fields report per index
            messages = [m for sub in messages.values() for m in (sub if isinstance(sub, list) else [sub])]
        for message in messages:
            out.append((FIELD_LABELS.get(field, field), str(message)))
    return out


def _ns_to_text(value) -> str:
    if not isinstance(value, int):
        return value
    seconds, nanos = divmod(value, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return f"{stamp}.{nanos:09d}"


def _index_context(request) -> dict:
    exchanges = list(selectors.exchange_list().values("id", "name", "acronym", "mic"))
    return {
        "exchanges_json": exchanges,
        "tickers": selectors.ticker_list(),
        "min_date": conf.MIN_DATE,
        "max_date": dj_timezone.now().date().isoformat(),
        "sort_choices": SORT_CHOICES.items(),
        "bucket_choices": BUCKET_LABELS.items(),
        "aggregate_functions": list(AGGREGATE_FUNCTIONS),
        "formats": ExportFormat.choices,
        "exports": slots.queue_positions_attach(selectors.export_list(user=request.user).filter(owner=request.user)[:10]),
        "max_operations": 5,
    }


@login_required
@require_GET
def index(request):
    return render(request, "trades/index.html", _index_context(request))


def _preview_response(request, context: dict):
    """HTMX gets the fragment; a plain form post (no JavaScript) gets the whole page around it."""
    if request.htmx:
        return render(request, "trades/partials/preview.html", context)
    return render(request, "trades/index.html", {**_index_context(request), "preview": context})


@login_required
@require_POST
def expression_check(request):
    text = request.POST.get("expression", "")
    valid, error, position = expressions.validate(text)
    context = {
        "text": text, "valid": valid, "error": error, "position": position, "blank": not text.strip(),
        "normalized": expressions.normalize(text) if valid else "",
        "before": text[: (position or 1) - 1], "at": text[(position or 1) - 1 : position or 1],
    }
    return render(request, "trades/partials/expression_check.html", context)


@login_required
@require_POST
def preview(request):
    serializer = PreviewRequestSerializer(data=_form_data(request.POST))
    if not serializer.is_valid():
        return _preview_response(request, {"errors": _errors(serializer)})
    params = serializer.to_params()
    try:
        page = selectors.export_preview(params=params, cursor=serializer.validated_data.get("cursor") or None)
    except ValidationError as exc:
        return _preview_response(request, {"errors": _errors(exc)})
    except selectors.CursorError as exc:
        return _preview_response(request, {"errors": [("Page", str(exc))]})
    time_columns = {"participant_timestamp", "bucket_start"}
    shown = [
        [_ns_to_text(v) if page["columns"][i] in time_columns else v for i, v in enumerate(row)]
        for row in page["rows"]
    ]
    return _preview_response(
        request, {"page": page, "rows": shown, "cursor": serializer.validated_data.get("cursor") or ""}
    )


@login_required
@require_POST
def export_start(request):
    serializer = ExportRequestSerializer(data=_form_data(request.POST))
    if not serializer.is_valid():
        return render(request, "trades/partials/export_status.html", {"errors": _errors(serializer)})
    try:
        result = services.export_request(user=request.user, params=serializer.to_params())
    except ValidationError as exc:
        return render(request, "trades/partials/export_status.html", {"errors": _errors(exc)})
    except services.ExportConflict as exc:
        return render(request, "trades/partials/export_status.html", {"errors": [("Export", str(exc))]})
    if not request.htmx:
        return redirect("trades:export_detail", pk=result.export.pk)
    return render(
        request, "trades/partials/export_status.html",
        {"export": result.export, "outcome": result.outcome, "export_json": json.dumps(_export_json(result.export))},
    )


def _export_json(export: Export) -> dict:
    data = ExportSerializer(export).data
    data["download_url"] = reverse("trades:export_download", args=[export.pk]) if export.is_available else None
    data["ws_url"] = ExportStream.path(export.pk)
    data["detail_url"] = reverse("trades:export_detail", args=[export.pk])
    data["api_url"] = reverse("trades-api:export-detail", args=[export.pk])
    return json.loads(json.dumps(data, default=str))


@login_required
@require_GET
def export_resume(request):
    export = selectors.export_latest_finished(user=request.user)
    if export is None:
        message = "You have no finished export yet."
    elif not export.is_available:
        message = (f"Your latest export (#{export.pk}) has expired: its file was deleted by the retention policy. "
                   "Run the export again.")
    else:
        return render(request, "trades/partials/resume.html", {"export": export})
    if not request.htmx:
        raise Http404(message)
    return render(request, "trades/partials/resume.html", {"message": message})


@login_required
@require_GET
def export_list(request):
    exports = slots.queue_positions_attach(selectors.export_list(user=request.user).select_related("owner")[:100])
    return render(request, "trades/export_list.html", {"exports": exports})


@login_required
@require_GET
def export_detail(request, pk: int):
    export = found_or_404(selectors.export_get_for_viewer(user=request.user, pk=pk))
    return render(request, "trades/export_detail.html", {"export": export, "export_json": json.dumps(_export_json(export))})


@login_required
@require_POST
def export_cancel(request, pk: int):
    export = found_or_404(selectors.export_get_for_viewer(user=request.user, pk=pk))
    if not export.is_finished:
        services.export_cancel(export=export, by=request.user)
    return redirect("trades:export_detail", pk=export.pk)


@login_required
def export_download(request, pk: int):
    if request.method not in ("GET", "HEAD"):
        return render(request, "trades/partials/resume.html", {"message": "Use GET."}, status=405)
    export = found_or_404(selectors.export_get_for_viewer(user=request.user, pk=pk))
    if not export.is_available:
        message = ("This export's file was deleted by the retention policy; run the export again."
                   if export.status == Export.Status.SUCCEEDED else f"This export is {export.status}; there is no file.")
        return render(request, "trades/partials/resume.html", {"message": message, "standalone": True}, status=404)
    return export_file_response(request, export=export)
