"""REST API and pages: upload, list, restore, delete, downloads — and that nobody else sees them."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from analyzer import services
from analyzer.models import AnalysisSession, Message
from analyzer.tests.conftest import SAMPLE_CSV, ask, create_session, process, run_pending_answers

pytestmark = pytest.mark.django_db


def csv_file(name="trades.csv", content=SAMPLE_CSV):
    return SimpleUploadedFile(name, content.encode() if isinstance(content, str) else content)


def test_upload_api_answers_202_with_the_queued_job_then_file_info(auth_client, user):
    client = auth_client(user)
    response = client.post("/api/analyzer/upload/", {"file": csv_file()}, format="multipart")
    assert response.status_code == 202, response.content
    body = response.json()
    session = AnalysisSession.objects.get(pk=body["session_id"])
    assert session.owner == user
    # Nothing parsed yet: the request only stored the bytes and queued the processing job.
    assert body["status"] == "processing" and body["error"] == ""
    job = body["processing"]
    assert (job["id"], job["kind"], job["status"], job["progress"]) == (session.processing.pk, "analyzer.processing",
                                                                        "queued", 0.0)
    assert job["websocket"] == f"/ws/analyzer/processings/{session.processing.pk}/"
    assert job["job_websocket"] == f"/ws/analyzer/processings/{session.processing.pk}/"
    assert (body["file"]["filename"], body["file"]["row_count"], body["file"]["preview"]) == ("trades.csv", 0, [])
    assert not session.answers.exists()
    detail = client.get(f"/api/analyzer/sessions/{session.pk}/").json()
    assert detail["status"] == "processing" and detail["processing"]["status"] == "queued"

    process(session)  # the worker
    detail = client.get(f"/api/analyzer/sessions/{session.pk}/").json()
    assert detail["status"] == "ready" and detail["processing"]["status"] == "succeeded"
    assert detail["processing"]["progress"] == 1.0
    f = detail["file"]
    assert (f["filename"], f["row_count"], f["column_count"]) == ("trades.csv", 10, 5)
    assert f["columns"][0] == {"name": "date", "type": "DATE"} and len(f["preview"]) == 10
    assert f["detection"]["delimiter"] == "comma" and f["profile"][0]["name"] == "date"
    # The auto-analysis was queued once the file was ready.
    assert session.answers.filter(mode="auto_analyze").count() == 1
    assert client.get("/api/analyzer/sessions/").json()["results"][0]["status"] == "ready"


def test_upload_api_returns_promptly(auth_client, user, monkeypatch):
    """The request never parses: processing is only queued, whatever it would cost."""
    calls = []
    monkeypatch.setattr(services.processing, "upload_ingest", lambda **kwargs: calls.append(kwargs))
    response = auth_client(user).post("/api/analyzer/upload/", {"file": csv_file()}, format="multipart")
    assert response.status_code == 202 and response.json()["processing"]["status"] == "queued"
    assert calls == [], "the upload request ran the processing itself"


def test_upload_api_without_auto_analysis(auth_client, user):
    response = auth_client(user).post("/api/analyzer/upload/", {"file": csv_file(), "auto_analyze": "false"},
                                      format="multipart")
    assert response.status_code == 202
    session = process(AnalysisSession.objects.get())
    assert session.processing.status == "succeeded" and not session.answers.exists()


def test_upload_api_bad_file_ends_failed_with_the_reason(auth_client, user, media_root):
    client = auth_client(user)
    response = client.post("/api/analyzer/upload/", {"file": csv_file("bad.csv", "a,b\n1,2,3\n4,5,6\n")},
                           format="multipart")
    assert response.status_code == 202
    session = process(AnalysisSession.objects.get(pk=response.json()["session_id"]))
    detail = client.get(f"/api/analyzer/sessions/{session.pk}/").json()
    reason = ("Could not parse the CSV: all 2 rows were rejected (first problem at line 2: too many columns, "
              "Expected Number of Columns: 2 Found: 3).")
    assert detail["status"] == "failed" and detail["error"] == reason
    assert detail["processing"]["status"] == "failed" and detail["processing"]["error"] == reason
    assert detail["messages"] == [] and not session.answers.exists()
    assert not (media_root / session.storage_dir).exists()
    listing = client.get("/api/analyzer/sessions/").json()["results"]
    assert listing[0]["status"] == "failed"


@pytest.mark.parametrize("name,content,message", [
    ("x.txt", "a\n1\n", "Unsupported file type"),
    ("x.csv", b"", "The file is empty."),
    ("x.csv", b"\x00\x01\x02 binary", "does not look like a CSV"),
    ("x.parquet", "a,b\n1,2\n", "Parquet magic bytes"),
])
def test_upload_api_validation_messages(auth_client, user, name, content, message):
    response = auth_client(user).post("/api/analyzer/upload/", {"file": csv_file(name, content)}, format="multipart")
    assert response.status_code == 400
    assert message in " ".join(response.json()["file"])


def test_upload_api_requires_a_file(auth_client, user):
    response = auth_client(user).post("/api/analyzer/upload/", {}, format="multipart")
    assert response.status_code == 400 and "Choose a file" in response.json()["file"][0]


def test_upload_api_too_large(auth_client, user, monkeypatch):
    from analyzer import conf

    monkeypatch.setattr(conf, "MAX_UPLOAD_BYTES", 100)
    response = auth_client(user).post("/api/analyzer/upload/", {"file": csv_file()}, format="multipart")
    assert response.status_code == 413 and "too large" in response.json()["file"][0]


def test_api_requires_authentication(api_client):
    assert api_client.get("/api/analyzer/sessions/").status_code in (401, 403)
    assert api_client.post("/api/analyzer/upload/", {"file": csv_file()}, format="multipart").status_code in (401, 403)


def test_list_detail_restore_and_delete(auth_client, user, trades_session, media_root,
                                        django_capture_on_commit_callbacks):
    ask(trades_session, user, "sum of qty by symbol")
    client = auth_client(user)
    listing = client.get("/api/analyzer/sessions/").json()
    assert listing["count"] == 1
    assert listing["results"][0]["title"] == "Sum of qty by symbol — trades.csv"
    detail = client.get(f"/api/analyzer/sessions/{trades_session.pk}/").json()
    assert detail["file"]["row_count"] == 10 and len(detail["file"]["preview"]) == 10
    events = [m["event"] for m in detail["messages"]]
    assert events[0] == "user" and "plot" in events and events[-1] == "done"
    assert detail["running"] is False and detail["websocket"] == f"/ws/analyzer/sessions/{trades_session.pk}/"
    folder = media_root / trades_session.storage_dir
    assert folder.exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.delete(f"/api/analyzer/sessions/{trades_session.pk}/")
    assert response.status_code == 204
    assert not AnalysisSession.objects.exists() and not Message.objects.exists()
    assert not folder.exists()


def test_list_query_count_does_not_grow(auth_client, user, django_assert_max_num_queries):
    for i in range(5):
        create_session(user, f"t{i}.csv", SAMPLE_CSV)
    services.session_create_from_upload(owner=user, upload=csv_file("queued.csv"), auto_analyze=False)
    client = auth_client(user)
    with django_assert_max_num_queries(6):
        listing = client.get("/api/analyzer/sessions/").json()
    assert listing["count"] == 6
    assert [r["status"] for r in listing["results"]] == ["processing"] + ["ready"] * 5


def test_other_users_sessions_are_invisible(auth_client, user, other_user, trades_session):
    intruder = auth_client(other_user)
    assert intruder.get("/api/analyzer/sessions/").json()["count"] == 0
    assert intruder.get(f"/api/analyzer/sessions/{trades_session.pk}/").status_code == 404
    assert intruder.delete(f"/api/analyzer/sessions/{trades_session.pk}/").status_code == 404
    ask(trades_session, user, "sum of qty by symbol")
    result = Message.objects.get(session=trades_session, kind="query_result")
    assert intruder.get(f"/api/analyzer/sessions/{trades_session.pk}/results/{result.pk}.csv").status_code == 404
    page = Client()
    page.force_login(other_user)
    assert page.get(reverse("analyzer:session_detail", args=[trades_session.pk])).status_code == 404
    assert page.post(reverse("analyzer:session_delete", args=[trades_session.pk])).status_code == 404
    assert page.get(reverse("analyzer:result_csv", args=[trades_session.pk, result.pk])).status_code == 404
    assert AnalysisSession.objects.filter(pk=trades_session.pk).exists()


def test_processing_state_is_the_owners_only(auth_client, user, other_user, admin_user):
    response = auth_client(user).post("/api/analyzer/upload/", {"file": csv_file()}, format="multipart")
    session_id = response.json()["session_id"]
    for intruder in (other_user, admin_user):
        assert auth_client(intruder).get(f"/api/analyzer/sessions/{session_id}/").status_code == 404
        page = Client()
        page.force_login(intruder)
        assert page.get(f"/analyzer/sessions/{session_id}/?part=file", HTTP_HX_REQUEST="true").status_code == 404


def test_staff_do_not_see_other_peoples_sessions_through_the_api(auth_client, admin_user, trades_session):
    assert auth_client(admin_user).get(f"/api/analyzer/sessions/{trades_session.pk}/").status_code == 404


def test_query_result_csv_download_has_all_kept_rows(auth_client, user, trades_session):
    messages = ask(trades_session, user, "SELECT * FROM range(1200) t(n)")
    result = next(m for m in messages if m.kind == "query_result")
    assert result.data["row_count"] == 1200 and result.data["shown"] == 500
    response = auth_client(user).get(f"/api/analyzer/sessions/{trades_session.pk}/results/{result.pk}.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["n"] and len(rows) == 1201 and rows[-1] == ["1199"]


def test_result_rows_are_capped(user, trades_session, monkeypatch):
    from analyzer import conf

    monkeypatch.setattr(conf, "RESULT_ROWS_KEPT", 1000)
    messages = ask(trades_session, user, "SELECT * FROM range(5000)")
    result = next(m for m in messages if m.kind == "query_result")
    assert result.data["row_count"] == 1000 and result.data["truncated"] is True
    assert len(result.rows_kept) == 1000


# --- pages -----------------------------------------------------------------------------------


def test_pages_require_login(client):
    response = client.get(reverse("analyzer:index"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_index_page_and_upload_form_redirects_to_session(client, user):
    client.force_login(user)
    assert client.get(reverse("analyzer:index")).status_code == 200
    response = client.post(reverse("analyzer:upload"), {"file": csv_file()})
    session = AnalysisSession.objects.get()
    assert response.status_code == 302 and response["Location"] == session.get_absolute_url()
    # The page is there at once, with the processing progress (followed over its websocket).
    html = client.get(session.get_absolute_url()).content.decode()
    assert 'data-testid="processing"' in html and "Detected:" not in html
    assert f"/ws/analyzer/processings/{session.processing.pk}/" in html and "processing.js" in html
    assert "processing…" in client.get(reverse("analyzer:index")).content.decode()
    process(session)
    page = client.get(session.get_absolute_url())
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="processing"' not in html
    assert "Detected: CSV, comma-delimited, with header" in html and "No rows rejected." in html
    assert 'id="analyzer-session"' in html and "AAPL" in html
    listing = client.get(reverse("analyzer:index")).content.decode()
    assert "trades.csv" in listing


def test_upload_page_json_error_for_xhr(client, user):
    client.force_login(user)
    response = client.post(reverse("analyzer:upload"), {"file": csv_file("x.csv", b"\x00\x00")},
                           HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert response.json() == {"file": ["This does not look like a CSV file: it contains binary data (NUL bytes)."]}


def test_upload_page_xhr_then_failed_processing_shows_the_reason(client, user):
    client.force_login(user)
    response = client.post(reverse("analyzer:upload"), {"file": csv_file("x.csv", "a,b\n")},
                           HTTP_ACCEPT="application/json")
    assert response.status_code == 202  # queued; the page's upload script goes to `url`
    body = response.json()
    assert body["status"] == "processing" and body["processing"]["status"] == "queued"
    session = process(AnalysisSession.objects.get(pk=body["session_id"]))
    html = client.get(body["url"]).content.decode()
    assert 'data-testid="processing-error"' in html and "The file has no data rows (only a header)." in html
    assert "could not be processed" in html
    # The fragment the page swaps in when the job ends.
    part = client.get(body["url"] + "?part=file", HTTP_HX_REQUEST="true").content.decode()
    assert part.lstrip().startswith('<section id="session-file"') and "no data rows" in part
    assert 'hx-swap-oob="true"' in part
    assert "failed" in client.get(reverse("analyzer:index")).content.decode()
    assert session.processing.status == "failed"


def test_upload_page_checks_csrf(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(reverse("analyzer:upload"), {"file": csv_file()})
    assert response.status_code == 403
    assert not AnalysisSession.objects.exists()


def test_upload_page_form_error_rerenders(client, user):
    client.force_login(user)
    response = client.post(reverse("analyzer:upload"), {"file": csv_file("x.xlsx", "zz")})
    assert response.status_code == 400 and "Unsupported file type" in response.content.decode()


def test_session_page_shows_rejected_rows(client, user):
    client.force_login(user)
    client.post(reverse("analyzer:upload"), {"file": csv_file("r.csv", "a,b,c\n1,2,3\n4,5\n6,7,8\n")})
    session = process(AnalysisSession.objects.get())
    html = client.get(session.get_absolute_url()).content.decode()
    assert "1 malformed row rejected" in html and "Line 3" in html


def test_delete_page(client, user, trades_session):
    client.force_login(user)
    response = client.post(reverse("analyzer:session_delete", args=[trades_session.pk]))
    assert response.status_code == 302 and not AnalysisSession.objects.exists()


def test_auto_analysis_then_restore_via_page(client, user, sync_jobs):
    client.force_login(user)
    client.post(reverse("analyzer:upload"), {"file": csv_file()})
    sync_jobs.commit()  # processed inline once the upload commits…
    run_pending_answers()
    session = AnalysisSession.objects.get()
    assert session.processing.status == "succeeded"  # …and the auto-analysis it queued ran too
    html = client.get(session.get_absolute_url()).content.decode()
    assert '"event": "plot"' in html and '"running": false' in html


def test_huge_ids_are_404_not_500(auth_client, user, client):
    api = auth_client(user)
    huge = 10**30
    assert api.get(f"/api/analyzer/sessions/{huge}/").status_code == 404
    assert api.delete(f"/api/analyzer/sessions/{huge}/").status_code == 404
    assert api.get(f"/api/analyzer/sessions/{huge}/results/{huge}.csv").status_code == 404
    client.force_login(user)
    assert client.get(f"/analyzer/sessions/{huge}/").status_code == 404
