"""The REST API: status codes, validation messages, permissions (negative cases included)."""

from datetime import date, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from core.models import JobStatus
from etl import services
from etl.models import AuditLog, Branch, FetchJob, RecordExport

from .conftest import write_demo_day

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("etl_fast")]
DAY = date(2025, 3, 4)


@pytest.fixture
def done_job(user, old_branch, pos_root, task_queue):
    write_demo_day(pos_root, branch="B01", pos=1, day=DAY, old=True, lines=30)
    job, _ = services.fetch_job_request(user=user, branch=old_branch, pos=1, work_date=DAY)
    task_queue.run()
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    return job


def test_api_needs_a_token(api_client, db):
    for url in ["/api/etl/jobs/", "/api/etl/branches/", "/api/etl/records/", "/api/etl/missing/?start=2025-01-01&end=2025-01-02"]:
        assert api_client.get(url).status_code in (401, 403), url
    assert api_client.post("/api/etl/jobs/fetch/", {}).status_code in (401, 403)


def test_fetch_queues_202_then_is_idempotent_200(auth_client, user, old_branch, task_queue):
    client = auth_client(user)
    response = client.post("/api/etl/jobs/fetch/", {"branch": "B01", "pos": 1, "date": "2025-03-04"}, format="json")
    assert response.status_code == 202, response.json()
    assert response.json()["queued"] == 1 and response.json()["job_id"]
    response = client.post("/api/etl/jobs/fetch/", {"branch": "B01", "pos": 1, "date": "2025-03-04"}, format="json")
    assert response.status_code == 200 and response.json()["queued"] == 0
    response = client.post("/api/etl/jobs/fetch/", {"branch": "B01", "date": "2025-03-01", "end_date": "2025-03-02"}, format="json")
    assert response.status_code == 202 and response.json()["queued"] == 4


@pytest.mark.parametrize("payload, field, text", [
    ({"branch": "NOPE", "pos": 1, "date": "2025-03-04"}, "branch", "No branch with code"),
    ({"branch": "B01", "pos": 3, "date": "2025-03-04"}, "pos", ""),
    ({"branch": "B01", "pos": 1, "date": "yesterday"}, "date", ""),
    ({"branch": "B01", "pos": 1, "date": "2025-03-04", "end_date": "2025-03-01"}, "end_date", "before the start"),
    ({"branch": "B01", "pos": 1, "date": "2999-01-01"}, "date", "future"),
    ({"branch": "B01", "pos": 1, "date": "2025-01-01", "end_date": "2035-01-01"}, "end_date", ""),
])
def test_fetch_validation(auth_client, user, old_branch, task_queue, payload, field, text):
    response = auth_client(user).post("/api/etl/jobs/fetch/", payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json() and text in str(response.json()[field])


def test_job_list_detail_and_filters(auth_client, other_user, done_job):
    client = auth_client(other_user)  # ETL data is the team's: another user sees it
    body = client.get("/api/etl/jobs/?branch=B01&status=succeeded").json()
    assert body["count"] == 1 and body["results"][0]["records_written"] == 30
    assert client.get("/api/etl/jobs/?status=failed").json()["count"] == 0
    assert client.get("/api/etl/jobs/?pos=9").status_code == 400
    detail = client.get(f"/api/etl/jobs/{done_job.pk}/").json()
    assert detail["chosen_files"]["rd5000"]["chosen"] and detail["counts"]["records_written"] == 30
    assert {f["filetype"] for f in detail["files"]} == {"rd5000", "rd5500"}
    assert detail["audit"][0]["action"] == "fetch"
    assert client.get("/api/etl/jobs/999999/").status_code == 404


def test_force_and_cancel_are_for_owner_or_staff(auth_client, user, other_user, admin_user, done_job, task_queue):
    stranger = auth_client(other_user)
    payload = {"branch": "B01", "pos": 1, "date": "2025-03-04", "force": True}
    assert stranger.post("/api/etl/jobs/fetch/", payload, format="json").status_code == 403
    response = auth_client(admin_user).post("/api/etl/jobs/fetch/", payload, format="json")
    assert response.status_code == 202
    assert stranger.post(f"/api/etl/jobs/{done_job.pk}/cancel/").status_code == 403
    response = auth_client(user).post(f"/api/etl/jobs/{done_job.pk}/cancel/")
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    assert AuditLog.objects.filter(job=done_job, action="cancel", actor=user).exists()
    response = auth_client(user).post(f"/api/etl/jobs/{done_job.pk}/cancel/")
    assert response.status_code == 400 and "already cancelled" in str(response.json())


def test_retry(auth_client, user, old_branch, task_queue):
    client = auth_client(user)
    job_id = client.post("/api/etl/jobs/fetch/", {"branch": "B01", "pos": 2, "date": "2025-03-04"}, format="json").json()["job_id"]
    task_queue.run()
    assert FetchJob.objects.get(pk=job_id).status == JobStatus.FAILED  # nothing on the host
    response = client.post(f"/api/etl/jobs/{job_id}/retry/")
    assert response.status_code == 202 and response.json()["status"] == "queued"
    response = client.post(f"/api/etl/jobs/{job_id}/retry/")
    assert response.status_code == 400 and "Only failed or cancelled" in str(response.json())


def test_missing_and_run(auth_client, user, old_branch, done_job, task_queue):
    client = auth_client(user)
    body = client.get("/api/etl/missing/?start=2025-03-03&end=2025-03-04").json()
    assert body["missing"]["B01"] == {"1": ["2025-03-03"], "2": ["2025-03-03", "2025-03-04"]}
    assert body["totals"]["done"] == 1
    assert client.get("/api/etl/missing/?start=2025-03-04&end=2025-03-01").status_code == 400
    assert client.get("/api/etl/missing/?start=2020-01-01&end=2025-01-01").status_code == 400
    response = client.post("/api/etl/missing/run/", {"branches_missing": {"B01": {"2": ["2025-03-04"]}}}, format="json")
    assert response.status_code == 202 and response.json()["queued"] == 1
    response = client.post("/api/etl/missing/run/", {"start": "2025-03-03", "end": "2025-03-04", "all_missing": True}, format="json")
    assert response.status_code == 202 and response.json()["queued"] == 2
    response = client.post("/api/etl/missing/run/", {"start": "2025-03-03", "end": "2025-03-04", "all_missing": True}, format="json")
    assert response.status_code == 200 and response.json()["queued"] == 0
    assert client.post("/api/etl/missing/run/", {"branches_missing": {"ZZ": {"1": ["2025-03-04"]}}}, format="json").status_code == 400
    assert client.post("/api/etl/missing/run/", {"branches_missing": {"B01": {"7": ["2025-03-04"]}}}, format="json").status_code == 400
    assert client.post("/api/etl/missing/run/", {}, format="json").status_code == 400


def test_branches_upsert_is_staff_only_and_audited(auth_client, user, admin_user, http_source):
    payload = {"code": "B05", "name": "Five", "is_new_branch": True, "source": "test host",
               "parser_config": {"cleaning": {"strip_item_prefixes": ["SKU"]}}, "closed_weekdays": [6]}
    assert auth_client(user).post("/api/etl/branches/", payload, format="json").status_code == 403
    admin = auth_client(admin_user)
    response = admin.post("/api/etl/branches/", payload, format="json")
    assert response.status_code == 201, response.json()
    response = admin.post("/api/etl/branches/", dict(payload, name="Five bis"), format="json")
    assert response.status_code == 200 and response.json()["name"] == "Five bis"
    change = AuditLog.objects.get(action="branch_update")
    assert change.actor == admin_user and change.detail["changes"]["name"] == {"from": "Five", "to": "Five bis"}
    bad = admin.post("/api/etl/branches/", dict(payload, parser_config={"delimiter": 5}), format="json")
    assert bad.status_code == 400 and "delimiter" in str(bad.json()["parser_config"])
    bad = admin.post("/api/etl/branches/", dict(payload, code="../x"), format="json")
    assert bad.status_code == 400 and "code" in bad.json()
    assert auth_client(user).get("/api/etl/branches/").json()["count"] == 1


def test_test_parse_api(auth_client, user, old_branch):
    sample = "TNSC;DATE;HEURE;RAYON;ARTICLE;QTE;MONTANT\n1;02/01/2025;10:00:00;A;PLU1;1;2,50\n2;x;10:00:00;A;1;1;1\n"
    client = auth_client(user)
    response = client.post(f"/api/etl/branches/{old_branch.pk}/test-parse/",
                           {"file": SimpleUploadedFile("s.csv", sample.encode("cp1252")), "filetype": "rd5000"},
                           format="multipart")
    assert response.status_code == 200, response.json()
    assert response.json()["parsed"] == 1 and response.json()["rejected"] == 1
    response = client.post(f"/api/etl/branches/{old_branch.pk}/test-parse/",
                           {"file": SimpleUploadedFile("s.csv", b"1|2"), "parser_config": '{"delimiter": "|", '},
                           format="multipart")
    assert response.status_code == 400 and "Not valid JSON" in str(response.json())
    response = client.post(f"/api/etl/branches/{old_branch.pk}/test-parse/", {}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()


def test_files_and_download(auth_client, user, done_job):
    client = auth_client(user)
    body = client.get(f"/api/etl/files/?job={done_job.pk}").json()
    assert body["count"] == 2
    response = client.get(body["results"][0]["download"])
    assert response.status_code == 200
    content = b"".join(response.streaming_content)
    import hashlib

    assert hashlib.sha256(content).hexdigest() == body["results"][0]["sha256"]
    assert client.get("/api/etl/files/999999/download/").status_code == 404


def test_records_and_export(auth_client, user, other_user, done_job, task_queue):
    client = auth_client(user)
    body = client.get("/api/etl/records/?branch=B01&pos=1&start=2025-03-01&end=2025-03-31").json()
    assert body["count"] == 30 and body["results"][0]["payment_method"]
    item = body["results"][0]["item_code"]
    assert client.get(f"/api/etl/records/?item={item}").json()["count"] >= 1
    assert client.get("/api/etl/records/?start=2025-03-31&end=2025-03-01").status_code == 400
    response = client.post("/api/etl/records/export/", {"year": 2025}, format="json")
    assert response.status_code == 202
    export_id = response.json()["id"]
    task_queue.run()
    detail = client.get(f"/api/etl/exports/{export_id}/").json()
    assert detail["status"] == "succeeded" and detail["row_count"] == 30
    assert auth_client(other_user).get(f"/api/etl/exports/{export_id}/").status_code == 404
    assert auth_client(other_user).get(f"/api/etl/exports/{export_id}/download/").status_code == 404
    response = client.get(detail["download"])
    assert response.status_code == 200 and 'records_2025.csv' in response["Content-Disposition"]
    assert client.post("/api/etl/records/export/", {"year": 1800}, format="json").status_code == 400
    assert client.post("/api/etl/records/export/?year=1800").status_code == 400
    # A branch and dates, as validated, are stored as JSON and export only what they select.
    from etl.models import Branch, RecordExport

    response = client.post("/api/etl/records/export/", {"branch": "B01", "pos": 1, "start": "2025-03-01",
                                                        "end": "2025-03-31"}, format="json")
    assert response.status_code == 202, response.content
    task_queue.run()
    export = RecordExport.objects.get(pk=response.json()["id"])
    assert export.filters == {"branch": Branch.objects.get(code="B01").pk, "pos": 1, "start": "2025-03-01",
                              "end": "2025-03-31"}
    assert (export.status, export.row_count) == ("succeeded", 30)


def test_record_export_is_never_started_by_a_get(auth_client, user, done_job, task_queue):
    client = auth_client(user)
    before = RecordExport.objects.count()
    response = client.get("/api/etl/records/export/?year=2025")
    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "GET" not allowed.'}
    assert RecordExport.objects.count() == before
    # The query string still works for a POST with an empty body.
    response = client.post("/api/etl/records/export/?year=2025")
    assert response.status_code == 202 and RecordExport.objects.count() == before + 1


def test_daily_schedule_queues_yesterday(root_user, old_branch, new_branch, task_queue):
    Branch.objects.filter(pk=new_branch.pk).update(is_active=False)
    assert services.fetch_job_request_daily() == 2
    yesterday = timezone.localdate() - timedelta(days=1)
    assert set(FetchJob.objects.values_list("branch__code", "pos", "work_date")) == {("B01", 1, yesterday), ("B01", 2, yesterday)}
    assert services.fetch_job_request_daily() == 0  # idempotent
    from django_q.models import Schedule

    assert Schedule.objects.filter(func="etl.tasks.fetch_job_request_daily").count() == 1


def test_test_parse_uses_the_branch_kind_unless_told(auth_client, user, new_branch):
    sample = "tnsc,date,time,item_code,department,quantity,amount\n1,2025-01-02,10:00:00,A1,X,1,2.50\n"
    client = auth_client(user)
    url = f"/api/etl/branches/{new_branch.pk}/test-parse/"
    body = client.post(url, {"file": SimpleUploadedFile("s.csv", sample.encode())}, format="multipart").json()
    assert body["parsed"] == 1 and body["config"]["delimiter"] == ","
    body = client.post(url, {"file": SimpleUploadedFile("s.csv", sample.encode()), "is_new_branch": "false"},
                       format="multipart").json()
    assert body["parsed"] == 0 and body["rejected"] == 1 and body["config"]["delimiter"] == ";"


@pytest.mark.parametrize("branch", ["%00", "a%00b"])
def test_a_branch_code_with_nul_is_a_400_not_a_500(auth_client, user, branch):
    # PostgreSQL refuses NUL in text; found by the schema fuzzing on PostgreSQL.
    response = auth_client(user).get(f"/api/etl/files/?branch={branch}")
    assert response.status_code == 400 and response.json()["branch"] == ["Give a branch code."]


@pytest.mark.parametrize("branch", ["²", "٣", "99999999999999999999999", True])
def test_a_branch_given_by_odd_digits_or_a_huge_id_is_a_400_not_a_500(auth_client, user, branch):
    # Found by the schema fuzzing: '²'.isdigit() is true but int('²') fails; SQLite refuses ids past 2**63.
    response = auth_client(user).post("/api/etl/records/export/", {"branch": branch}, format="json")
    assert response.status_code == 400, response.content
    assert "branch" in response.json()
