"""Demo data: a generated POS host on local disk, three branches, a week queued.

`demo_ensure` is idempotent and bounded (a few seconds): files already
generated are left as they are, branches are created once, and days already
fetched are not queued again.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

from django.contrib.auth import get_user_model
from django.utils import timezone

from etl import conf
from etl.demo_files import day_files, write_day
from etl.models import POS_NUMBERS, Branch, FileSource

DEMO_SOURCE = "Demo POS share"
DEMO_BRANCHES = [
    # code, name, new kind, closed weekdays, opened days ago
    ("B01", "Lyon Part-Dieu", False, [6], 400),
    ("B02", "Marseille Vieux-Port", False, [], 400),
    ("N01", "Nantes Île", True, [], 45),
]
DEMO_DAYS = 75
QUEUE_DAYS = 7


def demo_source_generate(*, root: Path, end: date, days: int = DEMO_DAYS, seed: int = 7) -> int:
    """Write the demo host tree; days already present are skipped. Returns files written."""
    written = 0
    for code, _name, new_kind, closed, opened_ago in DEMO_BRANCHES:
        opened = end - timedelta(days=opened_ago)
        for pos in POS_NUMBERS:
            for offset in range(days):
                day = end - timedelta(days=offset)
                rng = random.Random(f"{seed}-{code}-{pos}-{day.isoformat()}")
                folder = root / code / str(pos) / day.strftime("%Y%m%d")
                if day < opened or day.weekday() in closed or folder.exists():
                    continue
                if rng.random() < 0.05:  # the terminal never exported that day
                    continue
                files = day_files(rng=rng, pos=pos, work_date=day, lines=rng.randint(80, 260), old=not new_kind)
                write_day(root, branch=code, pos=pos, work_date=day, files=files)
                written += len(files)
    return written


def demo_owner():
    User = get_user_model()
    return (
        User.objects.filter(username="demo", is_active=True).first()
        or User.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
        or User.objects.filter(is_staff=True, is_active=True).order_by("pk").first()
    )


def demo_ensure(*, stdout, queue: bool = True) -> None:
    from etl import services

    root = conf.DEMO_SOURCE_ROOT
    root.mkdir(parents=True, exist_ok=True)
    yesterday = timezone.localdate() - timedelta(days=1)
    written = demo_source_generate(root=root, end=yesterday)
    stdout.write(f"etl: demo POS share at {root} ({written} new files)\n")
    source, _ = FileSource.objects.get_or_create(
        name=DEMO_SOURCE, defaults={"kind": FileSource.Kind.DIRECTORY, "root_path": str(root)}
    )
    if source.root_path != str(root):
        FileSource.objects.filter(pk=source.pk).update(root_path=str(root))
    for code, name, new_kind, closed, opened_ago in DEMO_BRANCHES:
        Branch.objects.get_or_create(
            code=code,
            defaults={"name": name, "is_new_branch": new_kind, "source": source, "closed_weekdays": closed,
                      "opened_on": yesterday - timedelta(days=opened_ago)},
        )
    owner = demo_owner()
    if not queue or owner is None:
        stdout.write("etl: no demo/superuser account yet, nothing queued\n")
        return
    queued = 0
    for branch in Branch.objects.filter(code__in=[b[0] for b in DEMO_BRANCHES], is_active=True):
        for pos in POS_NUMBERS:
            for offset in range(QUEUE_DAYS):
                day = yesterday - timedelta(days=offset)
                if not branch.expects_data(day):
                    continue
                _job, now = services.fetch_job_request(user=owner, branch=branch, pos=pos, work_date=day)
                queued += int(now)
    stdout.write(f"etl: {queued} fetch job(s) queued for the last {QUEUE_DAYS} days (run the worker to process)\n")
