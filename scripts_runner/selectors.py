"""Reads of the script runner: what a user may see, logs, code."""

from __future__ import annotations

from collections.abc import Iterator

from django.core.files.storage import default_storage
from django.db.models import OuterRef, QuerySet, Subquery

from core.permissions import get_for_viewer, visible_to
from scripts_runner.models import LogChunk, Script, ScriptRun

LOG_PAGE = 500


def script_list(*, user) -> QuerySet[Script]:
    """The user's own scripts (staff too: a script is private to its owner), with their latest run."""
    latest = ScriptRun.objects.filter(script=OuterRef("pk")).order_by("-created_at", "-pk")
    return (
        Script.objects.filter(owner=user)
        .annotate(
            latest_run_id=Subquery(latest.values("pk")[:1]),
            latest_status=Subquery(latest.values("status")[:1]),
        )
        .order_by("-updated_at", "-pk")
    )


def script_get(*, user, pk) -> Script | None:
    return Script.objects.filter(owner=user, pk=pk).first()


CODE_MISSING_MESSAGE = "The script's file is missing from storage; save its code again to restore it."


def script_code(*, script: Script) -> str | None:
    """The script's code, or None when the store no longer holds its file."""
    try:
        with default_storage.open(script.file.name, "rb") as fh:
            return fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None


def run_list(*, user, script: Script | None = None) -> QuerySet[ScriptRun]:
    """Runs the user may see: their own; staff see everyone's."""
    runs = visible_to(ScriptRun.objects.select_related("script", "owner", "cancelled_by"), user)
    if script is not None:
        runs = runs.filter(script=script)
    return runs.order_by("-created_at", "-pk")


def run_get_for_viewer(*, user, pk) -> ScriptRun | None:
    """Who may see a run (its page, the API, its live log): its owner and staff."""
    return get_for_viewer(run_list(user=user), pk)


def log_chunks_after(*, run: ScriptRun, after: int, limit: int = LOG_PAGE) -> list[LogChunk]:
    return list(LogChunk.objects.filter(run=run, seq__gt=after).order_by("seq")[:limit])


def log_text(*, run: ScriptRun) -> Iterator[str]:
    """The whole log as text: stderr lines are prefixed `[stderr] `, runner notes `[runner] `."""
    prefix = {"stdout": "", "stderr": "[stderr] ", "system": "[runner] "}
    for chunk in LogChunk.objects.filter(run=run).order_by("seq").iterator(chunk_size=200):
        mark = prefix.get(chunk.stream, "")
        if mark:
            yield "".join(f"{mark}{line}\n" for line in chunk.lines())
        else:
            yield chunk.text + "\n"
