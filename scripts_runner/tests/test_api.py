"""API: upload checks, visibility (negative tests), runs, cancel, logs."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from core.models import JobStatus
from scripts_runner import services
from scripts_runner.models import LogChunk, Script, ScriptRun
from scripts_runner.runner import LogWriter

pytestmark = pytest.mark.django_db


def upload(client, code: bytes, filename="hello.py", **extra):
    return client.post("/api/scripts/", {"file": SimpleUploadedFile(filename, code), **extra}, format="multipart")


def test_upload_list_retrieve(auth_client, user):
    client = auth_client(user)
    response = upload(client, b"print('hi')\n")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "hello.py" and body["size"] == 12 and len(body["sha256"]) == 64
    assert body["code"] == "print('hi')\n"
    script = Script.objects.get(pk=body["id"])
    assert script.file.name.startswith(f"scripts_runner/scripts/{user.pk}/")
    listing = client.get("/api/scripts/").json()
    assert [s["name"] for s in listing["results"]] == ["hello.py"]
    assert listing["results"][0]["latest_status"] is None
    detail = client.get(f"/api/scripts/{script.pk}/").json()
    assert detail["code"] == "print('hi')\n"


def test_upload_with_name_and_pasted_code(auth_client, user):
    client = auth_client(user)
    assert upload(client, b"x = 1\n", name="renamed.py").json()["name"] == "renamed.py"
    response = client.post("/api/scripts/", {"name": "pasted.py", "code": "print(2)\n"}, format="json")
    assert response.status_code == 201 and response.json()["code"] == "print(2)\n"


@pytest.mark.parametrize(
    "code, filename, field, fragment",
    [
        (b"print('a')\nif True print(1)\n", "bad.py", "file", "line 2, column"),
        (b"x = (\n", "bad.py", "file", "Syntax error at line 1"),
        (b"\xff\xfe\x00", "bin.py", "file", "not UTF-8"),
        (b"", "empty.py", "file", "empty"),
        (b"print(1)\n", "notes.txt", "name", "must end in .py"),
        (b"print(1)\n", "a b.py", "name", "must end in .py"),
    ],
)
def test_upload_rejected_with_clear_message(auth_client, user, code, filename, field, fragment):
    response = upload(auth_client(user), code, filename=filename)
    assert response.status_code == 400
    assert fragment in " ".join(response.json()[field]), response.json()
    assert not Script.objects.exists()


def test_upload_name_with_folders_rejected(auth_client, user):
    response = upload(auth_client(user), b"print(1)\n", name="../evil.py")
    assert response.status_code == 400 and "no folders" in response.json()["name"][0]


def test_upload_size_limit(auth_client, user, settings):
    settings.SCRIPTS_RUNNER_MAX_SCRIPT_BYTES = 100
    response = upload(auth_client(user), b"#" * 101 + b"\n")
    assert response.status_code == 400 and "limit is 100 bytes" in response.json()["file"][0]


def test_upload_duplicate_name_and_missing_file(auth_client, user):
    client = auth_client(user)
    assert upload(client, b"print(1)\n").status_code == 201
    assert "already have" in upload(client, b"print(2)\n").json()["name"][0]
    response = client.post("/api/scripts/", {}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()


def test_update_code(auth_client, user):
    client = auth_client(user)
    pk = upload(client, b"print(1)\n").json()["id"]
    response = client.put(f"/api/scripts/{pk}/", {"code": "print(2)\n"}, format="json")
    assert response.status_code == 200 and response.json()["code"] == "print(2)\n"
    response = client.put(f"/api/scripts/{pk}/", {"code": "print(\n"}, format="json")
    assert response.status_code == 400 and "Syntax error" in response.json()["file"][0]


def test_unauthenticated_is_refused(api_client):
    assert api_client.get("/api/scripts/").status_code in (401, 403)
    assert api_client.get("/api/runs/").status_code in (401, 403)


@pytest.fixture
def alice_run(user):
    script = services.script_create(owner=user, name="secret.py", code=b"print('secret')\n")
    services.script_access_set(user=user, run=True)
    run = services.script_run_create(script=script, user=user)
    LogWriter(run).write([("stdout", ["secret line"])], output_bytes=12, truncated=False)
    return script, run


def test_other_users_scripts_and_runs_are_invisible(auth_client, other_user, alice_run):
    script, run = alice_run
    client = auth_client(other_user)
    assert client.get("/api/scripts/").json()["results"] == []
    assert client.get("/api/runs/").json()["results"] == []
    for url in (f"/api/scripts/{script.pk}/", f"/api/scripts/{script.pk}/runs/", f"/api/runs/{run.pk}/",
                f"/api/runs/{run.pk}/log/", f"/api/runs/{run.pk}/log/?after=0"):
        assert client.get(url).status_code == 404, url
    assert client.delete(f"/api/scripts/{script.pk}/").status_code == 404
    assert client.put(f"/api/scripts/{script.pk}/", {"code": "print(3)\n"}, format="json").status_code == 404
    assert client.post(f"/api/scripts/{script.pk}/runs/", {}, format="json").status_code == 404
    assert client.post(f"/api/runs/{run.pk}/cancel/").status_code == 404
    run.refresh_from_db()
    assert not run.cancel_requested and Script.objects.filter(pk=script.pk).exists()


def test_admin_sees_and_cancels_any_run_but_not_scripts(auth_client, admin_user, alice_run):
    script, run = alice_run
    client = auth_client(admin_user)
    assert [r["id"] for r in client.get("/api/runs/").json()["results"]] == [run.pk]
    assert client.get(f"/api/runs/{run.pk}/").json()["owner"] == "alice"
    assert client.get(f"/api/scripts/{script.pk}/").status_code == 404  # scripts stay private
    response = client.post(f"/api/runs/{run.pk}/cancel/")
    assert response.status_code == 202
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED and run.cancelled_by == admin_user
    assert run.end_description == "Cancelled by admin1"


def test_start_run_requires_permission(auth_client, user):
    client = auth_client(user)
    pk = upload(client, b"print(1)\n").json()["id"]
    response = client.post(f"/api/scripts/{pk}/runs/", {}, format="json")
    assert response.status_code == 403 and "permission to run scripts" in response.json()["detail"]
    services.script_access_set(user=user, run=True)
    response = client.post(f"/api/scripts/{pk}/runs/", {"args": ["a"], "env": {"X": "1"}}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "queued" and body["args"] == ["a"] and body["env"] == {"X": "1"}
    assert body["ws_path"] == f"/ws/scripts/runs/{body['id']}/"
    listing = client.get(f"/api/scripts/{pk}/runs/").json()
    assert [r["id"] for r in listing["results"]] == [body["id"]]
    assert client.get("/api/scripts/").json()["results"][0]["latest_status"] == "queued"


def test_revoked_permission_refuses_runs(auth_client, user):
    services.script_access_set(user=user, run=True)
    services.script_access_set(user=user, run=False)
    client = auth_client(user)
    pk = upload(client, b"print(1)\n").json()["id"]
    assert client.post(f"/api/scripts/{pk}/runs/", {}, format="json").status_code == 403


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"args": "not a list"}, "args"),
        ({"args": [1, {"a": 2}]}, "args"),
        ({"env": {"BAD NAME": "1"}}, "env"),
        ({"env": {"PATH": "/evil"}}, "env"),
        ({"env": {"LD_PRELOAD": "/x.so"}}, "env"),
        ({"env": ["A=1"]}, "env"),
        ({"args": ["x"] * 51}, "args"),
    ],
)
def test_start_run_validates_input(auth_client, user, payload, field):
    services.script_access_set(user=user, run=True)
    client = auth_client(user)
    pk = upload(client, b"print(1)\n").json()["id"]
    response = client.post(f"/api/scripts/{pk}/runs/", payload, format="json")
    assert response.status_code == 400 and field in response.json(), response.json()
    assert not ScriptRun.objects.exists()


def test_log_text_and_after(auth_client, user, alice_run):
    script, run = alice_run
    writer = LogWriter(ScriptRun.objects.get(pk=run.pk))
    writer.write([("stderr", ["oops"]), ("stdout", ["more"])], output_bytes=20, truncated=False)
    client = auth_client(user)
    text = client.get(f"/api/runs/{run.pk}/log/")
    assert text.status_code == 200 and text["Content-Type"].startswith("text/plain")
    assert b"".join(text.streaming_content).decode() == "secret line\n[stderr] oops\nmore\n"
    page = client.get(f"/api/runs/{run.pk}/log/?after=1").json()
    assert [(c["seq"], c["stream"], c["lines"]) for c in page["chunks"]] == [(2, "stderr", ["oops"]), (3, "stdout", ["more"])]
    assert page["last_seq"] == 3 and page["finished"] is False
    assert client.get(f"/api/runs/{run.pk}/log/?after=3").json()["chunks"] == []
    for bad in ("abc", "-1", "1.5"):
        response = client.get(f"/api/runs/{run.pk}/log/?after={bad}")
        assert response.status_code == 400 and "after" in response.json()
    assert LogChunk.objects.filter(run=run).count() == 3


def test_delete_script_removes_runs_and_logs(auth_client, user, alice_run):
    script, run = alice_run
    name = script.file.name
    from django.core.files.storage import default_storage

    assert default_storage.exists(name)
    response = auth_client(user).delete(f"/api/scripts/{script.pk}/")
    assert response.status_code == 204
    assert not ScriptRun.objects.exists() and not LogChunk.objects.exists()


def test_api_schema_builds(auth_client, admin_user):
    response = auth_client(admin_user).get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/scripts/{id}/runs/" in response.content
