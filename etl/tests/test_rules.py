"""The ETL rules live in services: the page, the API and a direct service call refuse the same input alike."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from etl import conf, services
from etl.models import Branch, FetchJob

from .conftest import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("etl_fast")]
YESTERDAY = timezone.localdate() - timedelta(days=1)


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_pos_rule_on_service_page_and_api(client, auth_client, user, old_branch, task_queue):
    with pytest.raises(ValidationError, match="POS must be 1 or 2"):
        services.fetch_job_request_missing(user=user, cells=[(old_branch.pk, 3, YESTERDAY)])
    with pytest.raises(ValidationError, match="POS must be 1 or 2"):
        services.missing_cells_by_code(branches_missing={"B01": {"3": [YESTERDAY]}})
    login(client, user)
    for name in ("etl:missing_confirm", "etl:missing_run"):
        response = client.post(reverse(name), {"cell": [f"{old_branch.pk}:3:{YESTERDAY}"]}, HTTP_HX_REQUEST="true")
        assert response.status_code == 200 and "POS must be 1 or 2" in response.content.decode()
    response = auth_client(user).post("/api/etl/missing/run/", {"branches_missing": {"B01": {"01": [str(YESTERDAY)]}}},
                                      format="json")
    assert response.status_code == 400 and "POS must be 1 or 2, not '01'" in str(response.json()["branches_missing"])
    assert FetchJob.objects.count() == 0


def test_unknown_branch_on_service_page_and_api(client, auth_client, user, old_branch, task_queue):
    with pytest.raises(ValidationError, match="Unknown branch id"):
        services.missing_cells_validate(cells=[(old_branch.pk + 100, 1, YESTERDAY)])
    login(client, user)
    response = client.post(reverse("etl:missing_confirm"), {"cell": [f"{old_branch.pk + 100}:1:{YESTERDAY}"]},
                           HTTP_HX_REQUEST="true")
    assert "Unknown branch id" in response.content.decode()
    response = auth_client(user).post("/api/etl/missing/run/", {"branches_missing": {"ZZ9": {"1": [str(YESTERDAY)]}}},
                                      format="json")
    assert response.status_code == 400 and "Unknown branch code(s): ZZ9" in str(response.json())


def test_cell_count_limit_counts_what_was_sent(client, user, old_branch, task_queue, monkeypatch):
    monkeypatch.setattr(conf, "MAX_JOBS_PER_REQUEST", 2)
    login(client, user)
    cells = [f"{old_branch.pk}:1:{YESTERDAY - timedelta(days=n)}" for n in range(3)]
    response = client.post(reverse("etl:missing_run"), {"cell": cells}, HTTP_HX_REQUEST="true")
    assert "At most 2 days per request" in response.content.decode()
    assert FetchJob.objects.count() == 0


def test_date_range_rule_is_one_function(client, auth_client, user, old_branch):
    with pytest.raises(ValidationError) as caught:
        services.date_range_validate(start=YESTERDAY, end=YESTERDAY - timedelta(days=1))
    assert caught.value.message_dict == {"end": ["The end date is before the start date."]}
    start = YESTERDAY - timedelta(days=conf.CALENDAR_MAX_DAYS)
    login(client, user)
    page = client.get(reverse("etl:missing"), {"start": start, "end": YESTERDAY}).content.decode()
    api = auth_client(user).get("/api/etl/missing/", {"start": start, "end": YESTERDAY})
    limit = f"The range is limited to {conf.CALENDAR_MAX_DAYS} days."
    assert limit in page
    assert api.status_code == 400 and api.json() == {"end": [limit]}


def test_branch_upsert_service(user, admin_user, old_branch):
    with pytest.raises(PermissionDenied):
        services.branch_upsert(user=user, code="B77", name="x")
    branch, created = services.branch_upsert(user=admin_user, code="B77", name="Seventy-seven",
                                             closed_dates=[YESTERDAY])
    assert created and branch.closed_dates == [YESTERDAY.isoformat()]
    branch, created = services.branch_upsert(user=admin_user, code="B77", name="Renamed")
    assert not created and Branch.objects.get(code="B77").name == "Renamed"
    assert Branch.objects.filter(code="B77").count() == 1


def test_branch_upsert_api(auth_client, user, admin_user):
    assert auth_client(user).post("/api/etl/branches/", {"code": "B78", "name": "x"}, format="json").status_code == 403
    client = auth_client(admin_user)
    assert client.post("/api/etl/branches/", {"code": "B78", "name": "x"}, format="json").status_code == 201
    response = client.post("/api/etl/branches/", {"code": "B78", "name": "y"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "y"


def test_test_parse_limits_on_service_page_and_api(client, auth_client, admin_user, old_branch, monkeypatch):
    monkeypatch.setattr(conf, "TEST_PARSE_MAX_BYTES", 10)
    with pytest.raises(ValidationError, match="larger than 10 bytes"):
        services.branch_test_parse(is_new_branch=False, parser_config={}, filetype="rd5000", raw=b"x" * 11)
    login(client, admin_user)
    response = client.post(reverse("etl:branch_test_parse"), {
        "file": SimpleUploadedFile("s.txt", b"x" * 5000), "filetype": "rd5000", "parser_config": "{}"})
    assert "larger than 10 bytes" in response.content.decode()
    response = auth_client(admin_user).post(f"/api/etl/branches/{old_branch.pk}/test-parse/", {
        "file": SimpleUploadedFile("s.txt", b"x" * 5000), "filetype": "rd5000"}, format="multipart")
    assert response.status_code == 400 and "larger than 10 bytes" in str(response.json()["file"])
    bad_config = '{"no_such_key": 1}'
    with pytest.raises(ValidationError) as caught:
        services.branch_test_parse(is_new_branch=False, parser_config={"no_such_key": 1}, filetype="rd5000", raw=b"")
    message = caught.value.message_dict["parser_config"][0]
    response = client.post(reverse("etl:branch_test_parse"), {
        "file": SimpleUploadedFile("s.txt", b"x"), "filetype": "rd5000", "parser_config": bad_config})
    assert message in response.content.decode()
    response = client.post(reverse("etl:branch_create"), {"code": "B79", "name": "x", "parser_config": bad_config})
    assert response.status_code == 200 and message in response.content.decode()
    assert not Branch.objects.filter(code="B79").exists()
