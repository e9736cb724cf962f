"""The secret key: generated once for the embedded mode, required from the environment otherwise."""

import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
PUBLIC_KEY = "insecure-local-development-key-do-not-use-in-production"
PRINT_KEY = "from django.conf import settings; print(settings.SECRET_KEY)"


def _settings(tmp_path, **env_extra):
    env = {
        k: v for k, v in os.environ.items()
        if k not in ("DJANGO_SECRET_KEY", "DJANGO_DEBUG", "REDIS_URL", "PYTEST_VERSION", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", "PLATFORM_VAR_DIR": str(tmp_path)}, **env_extra)
    return subprocess.run(
        [sys.executable, "-c", PRINT_KEY], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120,
    )


def test_embedded_default_generates_a_key_once_and_keeps_it(tmp_path):
    first = _settings(tmp_path)
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    stored = tmp_path / "secret_key"
    assert stored.read_text().strip() == key
    assert len(key) >= 50 and key != PUBLIC_KEY
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    second = _settings(tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == key
    other_var = tmp_path / "other"
    other_var.mkdir()
    assert _settings(other_var).stdout.strip() not in ("", key)


def test_key_from_the_environment_wins_and_is_not_stored(tmp_path):
    key = secrets.token_urlsafe(50)
    result = _settings(tmp_path, DJANGO_SECRET_KEY=key)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == key
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize(
    "env_extra, message",
    [
        ({"DJANGO_DEBUG": "false"}, "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is false."),
        ({"REDIS_URL": "redis://127.0.0.1:6379/0"},
         "DJANGO_SECRET_KEY must be set when REDIS_URL is set: every web and worker host of a deployment "
         "must share the same key."),
        ({"DJANGO_SECRET_KEY": PUBLIC_KEY}, "DJANGO_SECRET_KEY is the public development key"),
        ({"DJANGO_SECRET_KEY": PUBLIC_KEY, "DJANGO_DEBUG": "false"}, "DJANGO_SECRET_KEY is the public development key"),
        ({"DJANGO_SECRET_KEY": PUBLIC_KEY, "REDIS_URL": "redis://127.0.0.1:6379/0"},
         "DJANGO_SECRET_KEY is the public development key"),
    ],
)
def test_refused_configurations(tmp_path, env_extra, message):
    result = _settings(tmp_path, **env_extra)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr
    assert not (tmp_path / "secret_key").exists()


def test_a_stored_key_is_not_used_when_redis_is_set(tmp_path):
    assert _settings(tmp_path).returncode == 0
    assert (tmp_path / "secret_key").exists()
    result = _settings(tmp_path, REDIS_URL="redis://127.0.0.1:6379/0")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set when REDIS_URL is set" in result.stderr


def test_the_test_run_has_a_random_key_shared_with_its_processes():
    from django.conf import settings

    assert settings.SECRET_KEY not in ("", PUBLIC_KEY)
    # Server and worker processes started by the tests inherit it (django-q2 signs tasks with it).
    assert os.environ["DJANGO_SECRET_KEY"] == settings.SECRET_KEY
