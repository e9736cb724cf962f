"""Scripts on both stores (local disk and a real S3-compatible server): uploaded, shown and run from the
store; a script whose file the store lacks is a clear message on every route, never a 500 or a path."""

import pytest
from django.core.files.storage import default_storage

from core.models import JobStatus
from scripts_runner import services
from scripts_runner.models import EndReason, Script, ScriptRun
from scripts_runner.runner import CODE_MISSING_ERROR
from scripts_runner.selectors import CODE_MISSING_MESSAGE


def _upload(client, code: bytes, name: str = "hello.py"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post("/api/scripts/", {"file": SimpleUploadedFile(name, code)}, format="multipart")


@pytest.mark.django_db
def test_an_uploaded_script_is_stored_and_shown_from_the_store(any_store, auth_client, user):
    client = auth_client(user)
    response = _upload(client, b"print('hi')\n")
    assert response.status_code == 201, response.json()
    script = Script.objects.get(pk=response.json()["id"])
    if any_store is not None:
        assert any_store.keys() == [script.file.name]
    assert client.get(f"/api/scripts/{script.pk}/").json()["code"] == "print('hi')\n"


@pytest.mark.django_db
def test_a_script_whose_file_is_gone_is_a_clear_answer_not_a_500(any_store, auth_client, user, client):
    api = auth_client(user)
    script = Script.objects.get(pk=_upload(api, b"print('hi')\n").json()["id"])
    default_storage.delete(script.file.name)
    detail = api.get(f"/api/scripts/{script.pk}/")
    assert detail.status_code == 200 and detail.json()["code"] is None
    client.force_login(user)
    page = client.get(f"/scripts/{script.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert CODE_MISSING_MESSAGE.replace("'", "&#x27;") in html
    assert str(default_storage.location) not in html and script.file.name not in html
    # Saving the code again restores it.
    assert api.put(f"/api/scripts/{script.pk}/", {"code": "print('back')\n"}, format="json").status_code == 200
    assert api.get(f"/api/scripts/{script.pk}/").json()["code"] == "print('back')\n"


@pytest.mark.django_db(transaction=True)
def test_a_run_of_a_script_whose_file_is_gone_fails_with_a_plain_message(any_store, runner, make_script):
    from scripts_runner import runner as runner_module

    script = make_script(runner, "print('hi')\n")
    run = services.script_run_create(script=script, user=runner)
    default_storage.delete(script.file.name)
    runner_module.script_run_execute(pk=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED and run.end_reason == EndReason.INTERNAL_ERROR
    assert run.error == CODE_MISSING_ERROR and "/" not in run.error


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sandbox_available")
def test_a_script_stored_on_s3_runs_in_the_sandbox(s3_store, runner, execute):
    run = execute(runner, "import sys\nprint('from the store', sys.argv[1:])\n", args=["x"])
    assert run.status == JobStatus.SUCCEEDED, run.error
    from scripts_runner.models import LogChunk

    lines = [line for chunk in LogChunk.objects.filter(run=run).order_by("seq") for line in chunk.lines()]
    assert lines == ["from the store ['x']"]
    assert s3_store.keys() == [ScriptRun.objects.get(pk=run.pk).script.file.name]
