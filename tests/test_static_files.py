"""Static files under the real storage: names holding their content hash, served to be cached for good."""

import re

from django.core.management import call_command

HASHED = re.compile(r'href="(/static/core/platform\.[0-9a-f]{12}\.css)"')


def test_pages_link_hashed_static_files_that_browsers_may_cache_for_good(client, settings, tmp_path, db):
    from config import settings as platform_settings

    # The real storage of config/settings.py, on the project's own files and the vendor files of base.html
    # (collecting every app's and package's files takes about a minute).
    settings.STORAGES = {**settings.STORAGES, "staticfiles": platform_settings.STORAGES["staticfiles"]}
    assert "Manifest" in settings.STORAGES["staticfiles"]["BACKEND"]
    settings.STATIC_ROOT = str(tmp_path / "static")
    settings.STATICFILES_FINDERS = ["django.contrib.staticfiles.finders.FileSystemFinder"]
    settings.STATICFILES_DIRS = [entry for entry in platform_settings.STATICFILES_DIRS
                                 if not isinstance(entry, tuple) or not entry[0].startswith("vendor/vega")]
    call_command("collectstatic", interactive=False, verbosity=0)
    assert (tmp_path / "static" / "staticfiles.json").exists()

    page = client.get("/accounts/login/").content.decode()
    [hashed] = HASHED.findall(page)
    assert "/static/core/platform.css" not in page
    response = client.get(hashed)
    assert response.status_code == 200
    assert "immutable" in response["Cache-Control"]
    assert b"".join(response.streaming_content) == (tmp_path / "static" / "core" / "platform.css").read_bytes()
