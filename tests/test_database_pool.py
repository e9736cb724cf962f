"""DATABASE_POOL: a web process keeps its PostgreSQL connections open across requests (psycopg's pool)
instead of opening one per request."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from conftest import database_url

BASE_DIR = Path(__file__).resolve().parent.parent

# Three requests' worth of database work, each between Django's request signals, as a web process does it.
REQUESTS = """
import json, django
django.setup()
from django.core.signals import request_finished, request_started
from django.db import connection
pids = []
for _ in range(3):
    request_started.send(sender=None)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pids.append(cursor.fetchone()[0])
    request_finished.send(sender=None)
print(json.dumps({"pids": pids, "pool": bool(connection.settings_dict.get("OPTIONS", {}).get("pool"))}))
"""


def backend_pids(pool: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_VERSION", "DJANGO_SETTINGS_MODULE")}
    # One connection at most in the pool, so that reuse is exact (a larger pool may open a second one while
    # the first is being reset after a request).
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DATABASE_URL=database_url(), DATABASE_POOL=str(pool).lower(),
               DATABASE_POOL_SIZE="1")
    out = subprocess.run([sys.executable, "-c", REQUESTS], cwd=BASE_DIR, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.django_db
def test_the_pool_keeps_one_connection_across_requests():
    if connection.vendor != "postgresql":
        pytest.skip("the pool is PostgreSQL's")
    pooled = backend_pids(pool=True)
    assert pooled["pool"] is True
    assert len(set(pooled["pids"])) == 1, pooled
    unpooled = backend_pids(pool=False)
    assert unpooled["pool"] is False
    assert len(set(unpooled["pids"])) == 3, unpooled  # a new connection (and server process) per request
