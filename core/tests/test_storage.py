"""core.storage: the one storage API on local disk and on a real S3-compatible server (moto, 127.0.0.1)."""

import os

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile

from core.storage import (
    AtomicFileSystemStorage, publish, staging_dir, storage_settings, stored_delete, stored_exists, stored_open_range,
    stored_save_upload, stored_stat, stored_tree_delete, stored_walk,
)

# --- choosing the store ------------------------------------------------------------------------


def test_a_file_url_selects_local_disk_in_that_folder():
    assert storage_settings("file:///var/lib/platform/media") == (
        {"BACKEND": "core.storage.AtomicFileSystemStorage"}, "/var/lib/platform/media")
    assert storage_settings("/srv/media")[1] == "/srv/media"


def test_an_s3_url_selects_the_s3_backend_with_its_options():
    entry, folder = storage_settings(
        "s3://team-bucket/platform/media?endpoint_url=http://127.0.0.1:9000&region=eu-west-1"
        "&addressing_style=path&verify=false")
    assert folder is None
    assert entry == {"BACKEND": "core.storage_s3.PlatformS3Storage", "OPTIONS": {
        "bucket_name": "team-bucket", "location": "platform/media", "endpoint_url": "http://127.0.0.1:9000",
        "region_name": "eu-west-1", "addressing_style": "path", "verify": False}}


@pytest.mark.parametrize("url, problem", [
    ("ftp://host/x", "use file:///path or s3://"),
    ("file://otherhost/srv", "file:///absolute/path"),
    ("relative/folder", "file:///absolute/path"),
    ("s3:///prefix", "needs a bucket name"),
    ("s3://key:secret@bucket/p", "must not hold credentials"),
    ("s3://bucket/p?acl=public-read", "unknown option 'acl'"),
])
def test_a_wrong_storage_url_fails_at_start_with_what_to_fix(url, problem):
    with pytest.raises(ImproperlyConfigured, match=problem):
        storage_settings(url)


def test_settings_read_platform_storage_url(tmp_path):
    import subprocess
    import sys

    env = dict(os.environ, PLATFORM_STORAGE_URL="s3://b/p?region=us-east-1", DJANGO_SETTINGS_MODULE="config.settings")
    code = "import django; django.setup(); from django.conf import settings; print(settings.STORAGES['default'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert "core.storage_s3.PlatformS3Storage" in out.stdout and "'bucket_name': 'b'" in out.stdout, out.stderr
    env["PLATFORM_STORAGE_URL"] = (tmp_path / "m").as_uri()
    code = "import django; django.setup(); from django.conf import settings; print(settings.MEDIA_ROOT)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == str(tmp_path / "m"), out.stderr


# --- staging and publishing whole -----------------------------------------------------------------


def test_local_storage_stages_beside_the_file_and_publishes_by_rename(tmp_path):
    storage = AtomicFileSystemStorage(location=str(tmp_path / "media"))
    folder = staging_dir("exports/7/out.csv", storage)
    assert folder == str(tmp_path / "media" / "exports" / "7" / ".partial") and os.path.isdir(folder)
    staged = os.path.join(folder, "x.part")
    with open(staged, "wb") as fh:
        fh.write(b"a,b\n")
    inode = os.stat(staged).st_ino
    assert publish("exports/7/out.csv", staged, storage) == "exports/7/out.csv"
    assert not os.path.exists(staged)
    assert os.stat(os.path.join(tmp_path, "media", "exports", "7", "out.csv")).st_ino == inode  # renamed, not copied
    assert storage.open("exports/7/out.csv").read() == b"a,b\n"


def test_s3_storage_stages_in_the_upload_folder_and_uploads(s3_store, tmp_path, settings):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "uploads")
    folder = staging_dir("exports/7/out.csv")
    assert folder == str(tmp_path / "uploads") and os.path.isdir(folder)
    staged = os.path.join(folder, "x.part")
    with open(staged, "wb") as fh:
        fh.write(b"a,b\n")
    saved = publish("exports/7/out.csv", staged)
    assert saved == "exports/7/out.csv" and not os.path.exists(staged)
    assert s3_store.keys() == ["exports/7/out.csv"]
    assert default_storage.open(saved).read() == b"a,b\n"


def test_publishing_keeps_a_local_copy_when_asked(s3_store, tmp_path, settings, monkeypatch):
    from core import filecache

    staged = tmp_path / "built.duckdb"
    staged.write_bytes(b"database bytes")
    publish("analyzer/s/data.duckdb", str(staged), keep_local_copy=True)
    assert s3_store.keys() == ["analyzer/s/data.duckdb"] and not staged.exists()

    def no_download(*args, **kwargs):
        raise AssertionError("the copy kept at publication must be used")

    monkeypatch.setattr(filecache, "stored_fetch", no_download)
    with filecache.local_copy("analyzer/s/data.duckdb") as path:
        assert open(path, "rb").read() == b"database bytes"
        assert path.startswith(settings.PLATFORM_FILE_CACHE_DIR)


# --- reading, listing, deleting (both stores) ------------------------------------------------------


def test_stat_and_ranges_answer_the_stored_bytes(any_store):
    name = default_storage.save("exports/1/file.csv", ContentFile(b"0123456789" * 300_000))
    stat = stored_stat(name)
    assert stat.size == 3_000_000 and stat.version and stat.modified.tzinfo is not None
    assert b"".join(stored_open_range(name, 5, 10)) == b"5678901234"
    assert b"".join(stored_open_range(name, 2_999_995)) == b"56789"
    whole = b"".join(stored_open_range(name))
    assert len(whole) == 3_000_000 and whole[:3] == b"012"
    assert stored_exists(name) and not stored_exists("exports/1/other.csv")


def test_a_missing_object_raises_before_anything_is_read(any_store):
    with pytest.raises(FileNotFoundError):
        stored_stat("nowhere/file.csv")
    with pytest.raises(FileNotFoundError):
        stored_open_range("nowhere/file.csv", 0, 10)


def test_walk_lists_every_object_and_tree_delete_removes_a_folder(any_store):
    for name in ("a/1.txt", "a/b/2.txt", "c/3.txt"):
        default_storage.save(name, ContentFile(b"x" * 3))
    listed = dict(stored_walk())
    assert sorted(listed) == ["a/1.txt", "a/b/2.txt", "c/3.txt"]
    assert all(stat.size == 3 for stat in listed.values())
    assert sorted(name for name, _ in stored_walk("a")) == ["a/1.txt", "a/b/2.txt"]
    stored_tree_delete("a")
    assert [name for name, _ in stored_walk()] == ["c/3.txt"]
    if any_store is not None:
        assert any_store.keys() == ["c/3.txt"]
    stored_delete("c/3.txt")
    stored_delete("c/3.txt")  # already gone: fine
    assert list(stored_walk()) == []
    with pytest.raises(ValueError):
        stored_tree_delete("")


def test_an_upload_on_disk_is_moved_or_uploaded_not_read_into_memory(any_store, settings, tmp_path):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    upload = TemporaryUploadedFile("big.csv", "text/csv", 0, "utf-8")
    upload.write(b"a,b\n1,2\n")
    upload.flush()
    upload.chunks = upload.__iter__ = None  # it must be moved (local) or uploaded from its path (S3), not read
    saved = stored_save_upload("uploads/big.csv", upload)
    assert not os.path.exists(upload.temporary_file_path())
    upload.close()  # as Django does at the end of the request: the moved file is not an error
    assert b"".join(stored_open_range(saved)) == b"a,b\n1,2\n"
    small = stored_save_upload("uploads/big.csv", SimpleUploadedFile("s.csv", b"x,y\n"))
    assert small != saved  # never overwrites another upload
    assert b"".join(stored_open_range(small)) == b"x,y\n"
