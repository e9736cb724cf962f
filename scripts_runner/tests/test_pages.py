"""HTML pages: upload/paste with clear errors, script and run pages, admin access page."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from scripts_runner import services
from scripts_runner.models import Script, ScriptRun
from scripts_runner.runner import LogWriter

pytestmark = pytest.mark.django_db


def test_index_requires_login(client):
    response = client.get(reverse("scripts_runner:index"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_upload_page_flow_and_syntax_error(client, user):
    client.force_login(user)
    page = client.get(reverse("scripts_runner:index"))
    assert page.status_code == 200 and b"Upload a .py file" in page.content
    bad = client.post(reverse("scripts_runner:index"),
                      {"form": "upload", "file": SimpleUploadedFile("bad.py", b"def f(:\n    pass\n")})
    assert bad.status_code == 400 and b"Syntax error at line 1, column 7" in bad.content
    good = client.post(reverse("scripts_runner:index"),
                       {"form": "upload", "file": SimpleUploadedFile("good.py", b"print('<b>hi</b>')\n")})
    script = Script.objects.get(name="good.py")
    assert good.status_code == 302 and good["Location"] == script.get_absolute_url()
    detail = client.get(script.get_absolute_url())
    assert detail.status_code == 200
    assert b'class="highlight"' in detail.content and b"&lt;b&gt;hi&lt;/b&gt;" in detail.content
    assert b"You do not have permission to run scripts" in detail.content


def test_paste_and_edit(client, user):
    client.force_login(user)
    response = client.post(reverse("scripts_runner:index"), {"form": "paste", "name": "p.py", "code": "x = (\n"})
    assert response.status_code == 400 and b"Syntax error at line 1" in response.content
    response = client.post(reverse("scripts_runner:index"), {"form": "paste", "name": "p.py", "code": "x = 1\n"})
    script = Script.objects.get(name="p.py")
    response = client.post(script.get_absolute_url(), {"name": "p.py", "code": "x = 2\n"})
    assert response.status_code == 302
    script.refresh_from_db()
    assert script.size == 6


def test_run_form_and_run_page(client, user):
    services.script_access_set(user=user, run=True)
    client.force_login(user)
    script = services.script_create(owner=user, name="r.py", code=b"print(1)\n")
    response = client.post(reverse("scripts_runner:script_run", args=[script.pk]),
                           {"args": "a 'b c'", "env": "X=1\n# comment\n"})
    run = ScriptRun.objects.get()
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    assert run.args == ["a", "b c"] and run.env == {"X": "1"}
    LogWriter(run).write([("stdout", ["out <1>"]), ("stderr", ["err 2"])], output_bytes=9,
                         truncated=False)
    page = client.get(run.get_absolute_url())
    assert page.status_code == 200
    assert b'data-after="2"' in page.content and b"out &lt;1&gt;" in page.content
    assert b'class="line stderr"' in page.content
    partial = client.get(run.get_absolute_url(), HTTP_HX_REQUEST="true")
    assert partial.status_code == 200 and b"run-status" in partial.content
    download = client.get(reverse("scripts_runner:run_log", args=[run.pk]))
    assert b"".join(download.streaming_content) == b"out <1>\n[stderr] err 2\n"
    bad = client.post(reverse("scripts_runner:script_run", args=[script.pk]), {"args": "'unclosed", "env": ""})
    assert bad.status_code == 302 and ScriptRun.objects.count() == 1


def test_pages_of_other_users_are_404(client, user, other_user):
    services.script_access_set(user=user, run=True)
    script = services.script_create(owner=user, name="mine.py", code=b"print(1)\n")
    run = services.script_run_create(script=script, user=user)
    client.force_login(other_user)
    for url in (script.get_absolute_url(), run.get_absolute_url(), reverse("scripts_runner:run_log", args=[run.pk])):
        assert client.get(url).status_code == 404, url
    for name, pk in (("script_run", script.pk), ("script_delete", script.pk), ("run_cancel", run.pk)):
        assert client.post(reverse(f"scripts_runner:{name}", args=[pk])).status_code == 404
    assert b"mine.py" not in client.get(reverse("scripts_runner:index")).content
    assert b"mine.py" not in client.get(reverse("scripts_runner:run_list")).content


def test_delete_from_page(client, user):
    client.force_login(user)
    script = services.script_create(owner=user, name="gone.py", code=b"print(1)\n")
    response = client.post(reverse("scripts_runner:script_delete", args=[script.pk]))
    assert response.status_code == 302 and not Script.objects.exists()


def test_access_page_is_staff_only_and_grants(client, user, admin_user, django_assert_max_num_queries):
    client.force_login(user)
    refused = client.get(reverse("scripts_runner:access"))
    assert refused.status_code == 403 and b'data-testid="forbidden"' in refused.content
    client.force_login(admin_user)
    with django_assert_max_num_queries(12):
        page = client.get(reverse("scripts_runner:access"))
    assert page.status_code == 200 and b"alice" in page.content
    client.post(reverse("scripts_runner:access"), {"user": user.pk, "run": "on"})
    assert services.can_run(type(user).objects.get(pk=user.pk))
    assert not type(user).objects.get(pk=user.pk).has_perm(services.NETWORK_PERMISSION)
    client.post(reverse("scripts_runner:access"), {"user": user.pk, "network": "on"})
    fresh = type(user).objects.get(pk=user.pk)
    assert not services.can_run(fresh) and fresh.has_perm(services.NETWORK_PERMISSION)
    assert client.post(reverse("scripts_runner:access"), {"user": "abc"}).status_code == 302


def test_staff_run_list_shows_all_runs(client, user, admin_user, django_assert_max_num_queries):
    services.script_access_set(user=user, run=True)
    script = services.script_create(owner=user, name="many.py", code=b"print(1)\n")
    for _ in range(5):
        services.script_run_create(script=script, user=user)
    client.force_login(admin_user)
    with django_assert_max_num_queries(8):
        page = client.get(reverse("scripts_runner:run_list"))
    assert page.content.count(b"many.py") == 5


def test_demo_is_idempotent(root_user):
    import io

    from scripts_runner.demo import demo_ensure

    out = io.StringIO()
    demo_ensure(stdout=out)
    demo_ensure(stdout=out)
    assert Script.objects.filter(owner=root_user).count() == 3
    assert "3 demo script(s)" in out.getvalue() and "0 demo script(s)" in out.getvalue()


def test_admin_sees_and_stops_another_users_run_page(client, user, admin_user):
    services.script_access_set(user=user, run=True)
    script = services.script_create(owner=user, name="theirs.py", code=b"print(1)\n")
    run = services.script_run_create(script=script, user=user)
    client.force_login(admin_user)
    page = client.get(run.get_absolute_url())
    assert page.status_code == 200 and b"theirs.py (alice)" in page.content
    assert client.get(script.get_absolute_url()).status_code == 404  # the code stays private
    response = client.post(reverse("scripts_runner:run_cancel", args=[run.pk]))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == "cancelled" and run.cancelled_by == admin_user


def test_index_query_count_does_not_grow_with_scripts(client, user, django_assert_max_num_queries):
    services.script_access_set(user=user, run=True)
    for i in range(8):
        script = services.script_create(owner=user, name=f"s{i}.py", code=b"print(1)\n")
        services.script_run_create(script=script, user=user)
    client.force_login(user)
    with django_assert_max_num_queries(8):
        page = client.get(reverse("scripts_runner:index"))
    assert page.content.count(b"status-queued") == 8
