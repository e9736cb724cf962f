from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from core.models import JobStatus
from etl import services
from etl.models import Branch, FetchJob, RecordExport

from .conftest import PASSWORD, write_demo_day

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("etl_fast")]
YESTERDAY = timezone.localdate() - timedelta(days=1)


@pytest.fixture
def fetched(user, old_branch, pos_root, task_queue):
    write_demo_day(pos_root, branch="B01", pos=1, day=YESTERDAY, old=True, lines=30)
    job, _ = services.fetch_job_request(user=user, branch=old_branch, pos=1, work_date=YESTERDAY)
    task_queue.run()
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    return job


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_every_page_renders(client, user, fetched):
    login(client, user)
    stored = fetched.files.first()
    for url in [
        reverse("etl:index"), reverse("etl:job_list"), reverse("etl:job_list") + "?status=succeeded&pos=1",
        reverse("etl:fetchjob_detail", args=[fetched.pk]), reverse("etl:fetch"), reverse("etl:missing"),
        reverse("etl:missing") + f"?start={YESTERDAY - timedelta(days=10)}&end={YESTERDAY}",
        reverse("etl:branch_list"), reverse("etl:record_list"), reverse("etl:record_list") + "?pos=1&item=X",
        reverse("etl:file_download", args=[stored.pk]),
    ]:
        response = client.get(url)
        assert response.status_code == 200, url


def test_bad_filters_never_500(client, user, fetched):
    login(client, user)
    for url in [
        reverse("etl:job_list") + "?start=nope&pos=7&status=zzz&branch=UNKNOWN",
        reverse("etl:missing") + "?start=2025-02-01&end=2024-01-01",
        reverse("etl:missing") + "?start=2020-01-01&end=2025-01-01",
        reverse("etl:record_list") + "?start=2025-13-01&page=abc",
        reverse("etl:fetchjob_detail", args=[999999]),
    ]:
        response = client.get(url)
        assert response.status_code in (200, 404), url
    response = client.get(reverse("etl:missing") + "?start=2025-02-01&end=2024-01-01")
    assert "before the start date" in response.content.decode()


def test_pages_need_login(client):
    response = client.get(reverse("etl:missing"))
    assert response.status_code == 302


def test_fetch_form_validates_and_queues(client, user, old_branch, task_queue):
    login(client, user)
    future = timezone.localdate() + timedelta(days=3)
    response = client.post(reverse("etl:fetch"), {"branch": "B01", "pos": "1", "date": future.isoformat()})
    assert response.status_code == 200 and "future" in response.content.decode()
    response = client.post(reverse("etl:fetch"), {"branch": "B01", "pos": "", "date": "2025-01-01", "end_date": "2025-01-03"})
    assert response.status_code == 302
    assert FetchJob.objects.count() == 6


def test_missing_confirm_then_run(client, user, old_branch, task_queue):
    login(client, user)
    cells = [f"{old_branch.pk}:1:{YESTERDAY}", f"{old_branch.pk}:2:{YESTERDAY}"]
    response = client.post(reverse("etl:missing_confirm"), {"cell": cells}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Queue 2 fetch jobs?" in body and "POS 2" in body
    assert FetchJob.objects.count() == 0
    response = client.post(reverse("etl:missing_run"), {"cell": cells}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "data-watch-jobs" in response.content.decode()
    assert 'data-ws="/ws/etl/jobs/"' in response.content.decode()
    assert FetchJob.objects.count() == 2
    response = client.post(reverse("etl:missing_confirm"), {"cell": ["garbage"]}, HTTP_HX_REQUEST="true")
    assert "is not a calendar cell" in response.content.decode()
    response = client.post(reverse("etl:missing_confirm"), {}, HTTP_HX_REQUEST="true")
    assert "Select at least one day" in response.content.decode()


def test_branch_pages_are_staff_only(client, user, admin_user, old_branch):
    login(client, user)
    assert client.get(reverse("etl:branch_create")).status_code == 403
    assert client.post(reverse("etl:branch_edit", args=[old_branch.pk]), {"code": "X", "name": "y"}).status_code == 403
    client.logout()
    login(client, admin_user)
    response = client.post(reverse("etl:branch_create"), {
        "code": "B09", "name": "Nine", "is_active": "on", "parser_config": '{"delimiter": "||"}', "closed_dates": "",
    })
    assert response.status_code == 200 and "single character" in response.content.decode()
    response = client.post(reverse("etl:branch_create"), {
        "code": "B09", "name": "Nine", "is_active": "on", "parser_config": '{"delimiter": "|"}',
        "closed_weekdays": ["6"], "closed_dates": "2025-12-25, 2025-01-01",
    })
    assert response.status_code == 302
    branch = Branch.objects.get(code="B09")
    assert branch.parser_config == {"delimiter": "|"} and branch.closed_weekdays == [6]
    assert branch.closed_dates == ["2025-01-01", "2025-12-25"]
    response = client.get(reverse("etl:branch_edit", args=[branch.pk]))
    assert response.status_code == 200


def test_test_parse_page(client, admin_user):
    from django.core.files.uploadedfile import SimpleUploadedFile

    login(client, admin_user)
    sample = "TNSC;DATE;HEURE;RAYON;ARTICLE;QTE;MONTANT\n1;02/01/2025;10:00:00;Épicerie;PLU000123;1,5;3,20\n2;31/02/2025;10:00:00;X;1;1;1\n"
    response = client.post(reverse("etl:branch_test_parse"), {
        "file": SimpleUploadedFile("s.csv", sample.encode("cp1252")), "filetype": "rd5000", "parser_config": "",
    }, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert "<strong>1</strong> parsed, <strong>1</strong> rejected" in body
    assert "bad date" in body and "000123" in body


def test_record_export_page(client, user, other_user, fetched, task_queue):
    login(client, user)
    response = client.post(reverse("etl:record_export"), {"year": str(YESTERDAY.year)})
    assert response.status_code == 302
    export = RecordExport.objects.get()
    task_queue.run()
    export.refresh_from_db()
    assert export.status == JobStatus.SUCCEEDED, export.error
    assert export.file.name.endswith(f"records_{YESTERDAY.year}.csv") and export.row_count == 30
    response = client.get(reverse("etl:recordexport_download", args=[export.pk]))
    content = b"".join(response.streaming_content).decode()
    assert content.splitlines()[0].startswith("branch,pos,work_date") and len(content.splitlines()) == 31
    client.logout()
    login(client, other_user)
    assert client.get(reverse("etl:recordexport_download", args=[export.pk])).status_code == 404
    assert client.get(reverse("etl:recordexport_detail", args=[export.pk])).status_code == 404


def test_job_actions_on_pages_respect_ownership(client, user, other_user, admin_user, fetched, task_queue):
    login(client, other_user)
    assert client.post(reverse("etl:job_action", args=[fetched.pk, "force"])).status_code == 403
    page = client.get(reverse("etl:fetchjob_detail", args=[fetched.pk])).content.decode()
    assert "Force refetch" not in page
    client.logout()
    login(client, user)
    assert "Force refetch" in client.get(reverse("etl:fetchjob_detail", args=[fetched.pk])).content.decode()
    response = client.post(reverse("etl:job_action", args=[fetched.pk, "force"]))
    assert response.status_code == 302
    assert client.post(reverse("etl:job_action", args=[fetched.pk, "nonsense"])).status_code == 404
    task_queue.run()
    fetched.refresh_from_db()
    assert fetched.status == JobStatus.SUCCEEDED and fetched.attempt_count == 2
    # No polling any more: the page streams over /ws/etl/jobs/<id>/ (etl/tests/test_job_detail_live.py).
    page = client.get(reverse("etl:fetchjob_detail", args=[fetched.pk])).content.decode()
    assert "hx-trigger" not in page and 'data-finished="1"' in page and "#2 Result: succeeded" in page


def test_records_api_query_count_is_flat(auth_client, user, fetched, django_assert_max_num_queries):
    client = auth_client(user)
    with django_assert_max_num_queries(6):
        body = client.get("/api/etl/records/?page_size=30").json()
    assert len(body["results"]) == 30
