"""ETL test fixtures: a real HTTP POS host, collected task queue, temporary media."""

from __future__ import annotations

import random
from datetime import date

import pytest
from django.utils.module_loading import import_string

from etl.demo_files import day_files, write_day
from etl.models import Branch, FileSource
from etl.demo_host import PosHostServer

from tests.support import PASSWORD  # noqa: F401  (re-exported for the tests here)



@pytest.fixture(autouse=True)
def _etl_media(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "tmp")


@pytest.fixture
def etl_fast(settings):
    """Short HTTP timeouts/backoff, no rate limit: tests never wait long."""
    settings.ETL_HTTP_BACKOFF = 0.01
    settings.ETL_HTTP_RATE_LIMIT = 0
    settings.ETL_HTTP_TIMEOUT = 2.0


class TaskQueue:
    """django-q2 tasks collected instead of sent; `run()` executes them inline, as a worker would.

    Tasks are queued after commit: `commit()` (conftest.Commits) runs the on_commit callbacks of the
    code under test, which queue them here; `run()` commits first, and again after every task.
    """

    def __init__(self, commits):
        self.calls: list[tuple[str, tuple]] = []
        self.commits = commits

    def commit(self) -> int:
        return self.commits.commit()

    def run(self) -> int:
        ran = 0
        self.commit()
        while self.calls:
            func, args = self.calls.pop(0)
            import_string(func)(*args)
            self.commit()
            ran += 1
        return ran


@pytest.fixture
def task_queue(monkeypatch, commits):
    queue = TaskQueue(commits)

    def fake_async_task(func, *args, **kwargs):
        commits.check_enqueue(func)
        queue.calls.append((func, args))
        return f"task-{len(queue.calls)}"

    monkeypatch.setattr("django_q.tasks.async_task", fake_async_task)
    return queue


@pytest.fixture
def pos_root(tmp_path):
    root = tmp_path / "pos-host"
    root.mkdir()
    return root


@pytest.fixture
def pos_host(pos_root):
    server = PosHostServer(pos_root).start()
    yield server
    server.stop()


def write_demo_day(root, *, branch: str, pos: int, day: date, old: bool, lines: int = 50, seed: int = 1,
                   **kwargs) -> dict[str, bytes]:
    files = day_files(rng=random.Random(seed), pos=pos, work_date=day, lines=lines, old=old,
                      truncated_chance=kwargs.pop("truncated_chance", 0), garbled_chance=kwargs.pop("garbled_chance", 0))
    write_day(root, branch=branch, pos=pos, work_date=day, files=files)
    return files


@pytest.fixture
def http_source(db, pos_host):
    return FileSource.objects.create(
        name="test host", kind=FileSource.Kind.HTTP, list_url_template=pos_host.list_template,
        download_url_template=pos_host.download_template, max_retries=2, timeout_seconds=2.0,
    )


@pytest.fixture
def old_branch(http_source):
    return Branch.objects.create(code="B01", name="Old branch", is_new_branch=False, source=http_source)


@pytest.fixture
def new_branch(http_source):
    return Branch.objects.create(code="N01", name="New branch", is_new_branch=True, source=http_source)

