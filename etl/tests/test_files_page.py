"""The Files page: the raw POS files fetches kept, filtered, previewed and downloaded by the team only."""

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.models import JobStatus
from etl import selectors, services
from etl.models import FetchedFile

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


def _rows(response) -> list[str]:
    return [f.filename for f in response.context["page"]]


def test_the_team_sees_every_fetched_file_and_filters_them(client, other_user, fetched):
    # ETL data is the team's: a user who did not start the fetch sees its files too.
    login(client, other_user)
    url = reverse("etl:file_list")
    response = client.get(url)
    assert response.status_code == 200
    names = _rows(response)
    assert sorted(names) == sorted(f.filename for f in fetched.files.all()) and len(names) == 2
    body = response.content.decode()
    for stored in fetched.files.all():
        assert reverse("etl:file_detail", args=[stored.pk]) in body
        assert reverse("etl:file_download", args=[stored.pk]) in body
    sales = _rows(client.get(url + "?filetype=rd5000"))
    assert len(sales) == 1 and sales[0].startswith("rd5000")
    assert len(_rows(client.get(url + f"?job={fetched.pk}&branch=B01"))) == 2
    assert _rows(client.get(url + f"?job={fetched.pk + 1}")) == []


def test_htmx_gets_the_table_fragment_of_the_same_template(client, user, fetched):
    login(client, user)
    response = client.get(reverse("etl:file_list") + "?filetype=rd5500", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and body.lstrip().startswith('<div id="files-table">')
    assert "<nav" not in body and "rd5500" in body and "rd5000" not in body


@pytest.mark.parametrize("query", [
    "?page=-1", "?page=abc", "?page=99999999999999999999", "?job=abc", "?job=-3", "?job=99999999999999999999999",
    "?branch=NOPE", "?branch=%00", "?filetype=exe", "?filetype=rd5000&page=2&sort=zzz",
])
def test_hostile_filters_never_500(client, user, fetched, query):
    login(client, user)
    response = client.get(reverse("etl:file_list") + query)
    assert response.status_code == 200, query


def test_preview_shows_the_first_rows_split_with_the_branch_config(client, user, fetched):
    login(client, user)
    stored = fetched.files.get(filetype="rd5000")
    response = client.get(reverse("etl:file_detail", args=[stored.pk]))
    assert response.status_code == 200
    preview = response.context["preview"]
    assert preview["problem"] == ""
    assert len(preview["rows"]) == 20 and preview["truncated"]
    # Old branches export ';' separated cp1252 files: a sales line has its 7 fields.
    assert all(len(row) >= 7 for row in preview["rows"])
    assert stored.sha256 in response.content.decode()


def test_preview_of_a_hostile_file_is_bounded(user, fetched):
    stored = fetched.files.get(filetype="rd5000")
    # One enormous line, far wider than a page, and a megabyte and more of it.
    stored.file.save("huge.csv", ContentFile(b"h;" * 10 + b"\n" + (b"x" * 500 + b";") * 3000 + b"\n"), save=True)
    preview = selectors.fetched_file_preview(stored=stored)
    assert preview["truncated"] and len(preview["rows"]) <= 1
    assert all(len(row) <= selectors.PREVIEW_COLUMNS for row in preview["rows"])
    assert all(len(v) <= selectors.PREVIEW_CELL_CHARS + 1 for row in preview["rows"] for v in row)
    stored.file.save("nul.csv", ContentFile(b"\x00\xff\xfe;\x00\n" * 50), save=True)
    preview = selectors.fetched_file_preview(stored=stored)
    assert preview["problem"] == "" and len(preview["rows"]) == 20


def test_preview_of_a_file_no_longer_stored_says_so(client, user, fetched):
    login(client, user)
    stored = fetched.files.first()
    stored.file.delete(save=False)
    FetchedFile.objects.filter(pk=stored.pk).update(file="etl/raw/gone.csv")
    response = client.get(reverse("etl:file_detail", args=[stored.pk]))
    assert response.status_code == 200 and "no longer stored" in response.content.decode()
    assert client.get(reverse("etl:file_download", args=[stored.pk])).status_code == 404


def test_download_sends_the_stored_bytes(client, user, fetched):
    login(client, user)
    stored = fetched.files.get(filetype="rd5500")
    response = client.get(reverse("etl:file_download", args=[stored.pk]))
    assert response.status_code == 200 and stored.filename in response["Content-Disposition"]
    import hashlib

    assert hashlib.sha256(b"".join(response.streaming_content)).hexdigest() == stored.sha256


def test_a_visitor_who_is_not_signed_in_gets_nothing(client, api_client, fetched):
    stored = fetched.files.first()
    for url in [reverse("etl:file_list"), reverse("etl:file_detail", args=[stored.pk]),
                reverse("etl:file_download", args=[stored.pk])]:
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url
    for url in ["/api/etl/files/", f"/api/etl/files/{stored.pk}/download/"]:
        assert api_client.get(url).status_code in (401, 403), url
    assert selectors.fetched_file_list(user=None, filters={}).count() == 0
    assert selectors.fetched_file_get_for_viewer(user=None, pk=stored.pk) is None


def test_unknown_or_odd_file_ids_are_404(client, user, fetched):
    login(client, user)
    for pk in [999999, 2**63]:
        assert client.get(f"/etl/files/{pk}/").status_code == 404
        assert client.get(f"/etl/files/{pk}/download/").status_code == 404


def test_the_api_filters_by_type_and_checks_visibility(auth_client, user, fetched):
    client = auth_client(user)
    body = client.get("/api/etl/files/?filetype=rd5000").json()
    assert body["count"] == 1 and body["results"][0]["filetype"] == "rd5000"
    assert client.get("/api/etl/files/?filetype=exe").status_code == 400
    assert client.get("/api/etl/files/999999/download/").status_code == 404


def test_the_list_reads_the_same_number_of_queries_for_more_files(client, user, fetched, old_branch, pos_root,
                                                                   task_queue):
    login(client, user)
    url = reverse("etl:file_list")
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for days in (2, 3, 4):
        day = YESTERDAY - timedelta(days=days)
        write_demo_day(pos_root, branch="B01", pos=2, day=day, old=True, lines=5)
        services.fetch_job_request(user=user, branch=old_branch, pos=2, work_date=day)
    task_queue.run()
    assert FetchedFile.objects.count() == 8
    with CaptureQueriesContext(connection) as more:
        response = client.get(url)
    assert len(_rows(response)) == 8
    assert len(more) == len(few), [q["sql"] for q in more]


def test_preview_and_download_on_local_disk_and_on_an_s3_store(any_store, client, user, old_branch, pos_root,
                                                                task_queue):
    write_demo_day(pos_root, branch="B01", pos=1, day=YESTERDAY, old=True, lines=30)
    job, _ = services.fetch_job_request(user=user, branch=old_branch, pos=1, work_date=YESTERDAY)
    task_queue.run()
    stored = FetchedFile.objects.get(job=job, filetype="rd5000")
    if any_store is not None:
        assert stored.file.name in any_store.keys()
    login(client, user)
    preview = client.get(reverse("etl:file_detail", args=[stored.pk])).context["preview"]
    assert preview["problem"] == "" and len(preview["rows"]) == 20
    response = client.get(reverse("etl:file_download", args=[stored.pk]))
    import hashlib

    assert hashlib.sha256(b"".join(response.streaming_content)).hexdigest() == stored.sha256
