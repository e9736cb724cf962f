"""manage.py storage_orphans: stored objects no row refers to, removed after a grace period, on both
stores (local disk and a real S3-compatible server)."""

import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from analyzer.tests.conftest import create_session
from core.storage import stored_walk
from scripts_runner import services as scripts

pytestmark = pytest.mark.django_db


def _run(*args) -> str:
    out = io.StringIO()
    call_command("storage_orphans", *args, stdout=out)
    return out.getvalue()


def _names() -> list[str]:
    return sorted(name for name, _ in stored_walk())


def test_orphans_are_listed_then_deleted_and_referenced_files_kept(any_store, user, commits):
    script = scripts.script_create(owner=user, name="job.py", code=b"print(1)\n")  # a FileField
    session = create_session(user)  # storage names in text fields
    commits.commit()
    lost_export = default_storage.save("trades/exports/9/export-1-lost.csv", ContentFile(b"a,b\n"))
    lost_session = default_storage.save("analyzer/0123abcd/data.duckdb", ContentFile(b"x" * 10))
    referenced = sorted([script.file.name, session.data_name])
    assert _names() == sorted(referenced + [lost_export, lost_session])

    listed = _run("--grace-hours", "0")
    assert lost_export in listed and lost_session in listed
    assert script.file.name not in listed and session.data_name not in listed
    assert "2 orphan(s), 14 bytes; run with --delete to remove them." in listed
    assert len(_names()) == 4  # listing deletes nothing

    assert "0 orphan(s)" in _run("--grace-hours", "1", "--delete")  # too young: kept
    assert len(_names()) == 4

    assert "Deleted 2 orphan(s), 14 bytes." in _run("--grace-hours", "0", "--delete")
    assert _names() == referenced
    if any_store is not None:
        assert any_store.keys() == referenced
    assert "0 orphan(s)" in _run("--grace-hours", "0")


def test_an_object_a_row_came_to_refer_to_meanwhile_is_kept(any_store, user):
    from core import orphans

    found = list(orphans.orphans_find(grace_hours=0))
    assert found == []
    name = default_storage.save("scripts_runner/scripts/1/late.py", ContentFile(b"print(2)\n"))
    found = list(orphans.orphans_find(grace_hours=0))
    assert [o.name for o in found] == [name]
    from scripts_runner.models import Script

    Script.objects.create(owner=user, name="late.py", file=name, size=9, sha256="0" * 64)
    assert orphans.orphans_delete(orphans=found) == 0
    assert _names() == [name]


def test_a_negative_grace_is_refused():
    with pytest.raises(CommandError, match="--grace-hours must be 0 or more"):
        _run("--grace-hours", "-1")
