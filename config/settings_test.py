"""Settings of a test run (pytest.ini), and of the server and worker processes the tests start (they
inherit DJANGO_SETTINGS_MODULE): the platform's settings with what only tests want.
"""

import os
import secrets

# One random key for the run, handed to the server and worker processes it starts through the
# environment (the base settings refuse to run on Redis without a key given).
os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))

from config.settings import *  # noqa: E402,F403
from config.settings import CACHES, CHANNEL_LAYERS, DATABASES, Q_CLUSTER, REDIS_URL, STORAGES, VAR_DIR, env  # noqa: E402

# Parallel test processes (xdist workers, other checkouts) share one Redis and one database server:
# each takes its own cluster name (also the cache and channel-layer prefix) and test database.
Q_CLUSTER_NAME = env.str("Q_CLUSTER_NAME", default=f"test{os.getpid()}")
Q_CLUSTER["name"] = Q_CLUSTER_NAME
if REDIS_URL:
    CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"asgi-{Q_CLUSTER_NAME}"
    CACHES["default"]["KEY_PREFIX"] = Q_CLUSTER_NAME
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file (not :memory:) so that worker and server processes started by the tests share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_platform_{os.getpid()}"}

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

# Pages link static files by their plain names: collecting and hashing every file (~100 MB) for each
# test process costs about a minute. The production-mode server of the browser tests
# (tests/e2e/test_csp_browser.py) collects them once and keeps the real, hashed storage.
if not env.bool("PLATFORM_TEST_HASHED_STATIC", default=False):
    STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
