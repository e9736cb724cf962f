"""Websocket paths are written once, by each stream class (`Stream.path()`), and handed to the pages.

No template or script spells a `/ws/...` path itself, so a stream's route and the pages that open it
cannot drift apart.
"""

import re
from pathlib import Path

from django.conf import settings
from django.urls import reverse

from core.consumers import WorkerCheckStream
from etl.consumers import FetchJobRowsStream
from scripts_runner.consumers import RunLogStream

ROOT = Path(settings.BASE_DIR)
SOURCES = [ROOT / "templates", ROOT / "static"] + [ROOT / app / part for app in settings.PLATFORM_APPS
                                                  for part in ("templates", "static")]


def _files(pattern: str) -> list[Path]:
    """The platform's own templates and scripts (third-party front-end packages sit under vendor/)."""
    return [p for root in SOURCES if root.is_dir() for p in root.rglob(pattern) if "vendor" not in p.parts]


def test_no_template_or_script_writes_a_socket_path():
    templates = _files("*.html")
    scripts = _files("*.js")
    assert any(p.name == "job_detail.html" for p in templates) and any(p.name == "etl.js" for p in scripts)
    written = []
    for path in templates:
        if "/ws/" in path.read_text():
            written.append(str(path.relative_to(ROOT)))
    for path in scripts:
        for no, line in enumerate(path.read_text().splitlines(), 1):
            code = line.strip()
            if code.startswith(("//", "*", "/*")):
                continue  # a comment naming the stream it listens to
            if re.search(r"['\"`/]ws/", code):
                written.append(f"{path.relative_to(ROOT)}:{no}")
    assert written == []


def test_health_page_opens_the_worker_check_stream(client, admin_user):
    from core import services

    client.force_login(admin_user)
    check = services.worker_check_create(user=admin_user)
    page = client.get(reverse("core:health")).content.decode()
    assert f'ws-connect="{WorkerCheckStream.path(check.pk)}"' in page
    assert WorkerCheckStream.path(check.pk) == f"/ws/core/worker-checks/{check.pk}/"


def test_etl_jobs_page_opens_the_job_rows_stream(client, user):
    client.force_login(user)
    page = client.get(reverse("etl:job_list")).content.decode()
    assert f'data-ws="{FetchJobRowsStream.path()}"' in page and FetchJobRowsStream.path() == "/ws/etl/jobs/"


def test_script_run_page_opens_the_run_log_stream(client, user):
    from scripts_runner import services

    services.script_access_set(user=user, run=True)
    script = services.script_create(owner=user, name="s.py", code=b"print(1)\n")
    run = services.script_run_create(script=script, user=user)
    client.force_login(user)
    page = client.get(reverse("scripts_runner:scriptrun_detail", args=[run.pk])).content.decode()
    assert f'data-ws="{RunLogStream.path(run.pk)}"' in page and RunLogStream.path(run.pk) == f"/ws/scripts/runs/{run.pk}/"
