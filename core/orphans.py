"""Stored objects no row refers to: found by listing the store, removed after a grace period.

A row refers to a stored object through a FileField (found on every installed model) or through a
storage name kept in a plain text field (`NAME_FIELDS`). An object younger than the grace period
(by the store's modified time) is never an orphan: its row may not be committed yet, or it is an
export still being written.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.apps import apps
from django.db import models
from django.utils import timezone

from core.storage import StoredStat, stored_delete, stored_walk

# Text fields holding a storage name (not FileFields): "app_label.Model" → field names.
NAME_FIELDS = {
    "trades.Export": ("file_name",),
    "analyzer.AnalysisSession": ("original_name", "data_name"),
}


@dataclass(frozen=True)
class Orphan:
    name: str
    size: int
    modified: datetime


def stored_names_referenced() -> set[str]:
    """Every storage name some row refers to."""
    names: set[str] = set()
    for model in apps.get_models():
        fields = [f.name for f in model._meta.get_fields() if isinstance(f, models.FileField)]
        fields += list(NAME_FIELDS.get(model._meta.label, ()))
        for field in fields:
            values = model._default_manager.exclude(**{field: ""}).exclude(**{f"{field}__isnull": True})
            names.update(values.values_list(field, flat=True).iterator(chunk_size=2000))
    return names


def orphans_find(*, grace_hours: float, now: datetime | None = None) -> Iterator[Orphan]:
    """Stored objects no row refers to and older than `grace_hours`."""
    cutoff = (now or timezone.now()) - timedelta(hours=grace_hours)
    referenced = stored_names_referenced()
    for name, stat in stored_walk():
        if name not in referenced and stat.modified < cutoff:
            yield _orphan(name, stat)


def _orphan(name: str, stat: StoredStat) -> Orphan:
    return Orphan(name=name, size=stat.size, modified=stat.modified)


def orphans_delete(*, orphans: list[Orphan]) -> int:
    """Delete the orphans (from the store and this host's cache); answers how many were deleted. Each is
    checked again just before: a row may have come to refer to it since the listing."""
    referenced = stored_names_referenced()
    deleted = 0
    for orphan in orphans:
        if orphan.name in referenced:
            continue
        stored_delete(orphan.name)
        deleted += 1
    return deleted
