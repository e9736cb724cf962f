"""core.filecache: worker-local copies of stored files, keyed by name and version, evicted by size,
safe for concurrent processes."""

import os

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from core import filecache
from core.storage import stored_delete, stored_stat


def _save(name: str, data: bytes) -> str:
    return default_storage.save(name, ContentFile(data))


def test_a_copy_is_fetched_once_then_reused(any_store, monkeypatch):
    name = _save("analyzer/x/data.duckdb", b"A" * 1000)
    fetched = []
    real = filecache.stored_fetch
    monkeypatch.setattr(filecache, "stored_fetch", lambda *a, **k: (fetched.append(a[0]), real(*a, **k)))
    with filecache.local_copy(name) as first:
        assert open(first, "rb").read() == b"A" * 1000
    with filecache.local_copy(name) as second:
        assert second == first
    assert filecache.local_copy_path(name) == first
    assert fetched == [name]
    assert first.endswith(".duckdb")  # readers that choose by suffix still can


def test_a_changed_object_is_never_answered_from_the_old_copy(any_store):
    name = _save("imports/bars.csv", b"old")
    with filecache.local_copy(name) as old_path:
        assert open(old_path, "rb").read() == b"old"
    default_storage.delete(name)
    assert _save(name, b"new content") == name
    with filecache.local_copy(name) as new_path:
        assert open(new_path, "rb").read() == b"new content"
    assert new_path != old_path and not os.path.exists(old_path)  # the old version is dropped


def test_a_missing_object_is_a_file_not_found(any_store):
    with pytest.raises(FileNotFoundError):
        with filecache.local_copy("nowhere.csv"):
            pass


def test_the_cache_is_evicted_least_recently_used_first_and_never_a_held_copy(s3_store, settings):
    settings.PLATFORM_FILE_CACHE_MAX_BYTES = 2500
    names = [_save(f"f/{i}.bin", bytes([65 + i]) * 1000) for i in range(4)]
    with filecache.local_copy(names[0]) as held:
        for name in names[1:]:
            with filecache.local_copy(name):
                pass
        # 4000 bytes cached, 2500 allowed: f/1 (least recently used, not held) goes; f/0 is held.
        assert os.path.exists(held)
    remaining = sorted(os.path.basename(os.path.dirname(p)) for p, _ in filecache.cache_entries())
    assert len(remaining) == 2
    assert filecache.cache_size() <= 2500
    cached = {open(p, "rb").read(1) for p, _ in filecache.cache_entries()}
    assert cached == {b"A", b"D"}  # held f/0 kept, f/3 the most recent


def test_on_local_disk_a_copy_is_a_hard_link_and_takes_no_cache_space(settings):
    name = _save("analyzer/y/data.duckdb", b"B" * 5000)
    settings.PLATFORM_FILE_CACHE_MAX_BYTES = 100
    with filecache.local_copy(name) as path:
        assert os.stat(path).st_nlink == 2
    assert filecache.cache_size() == 0
    stored_delete(name)  # deleting through the storage API drops this host's copy too
    assert filecache.cache_entries() == []


def test_deleting_through_the_storage_api_drops_the_copy_on_s3_too(s3_store):
    name = _save("imports/z.csv", b"z" * 10)
    with filecache.local_copy(name):
        pass
    assert len(filecache.cache_entries()) == 1
    stored_delete(name)
    assert filecache.cache_entries() == [] and s3_store.keys() == []


# A reader process of its own (a fresh interpreter, as a worker process is): the fetch writes the file in
# pieces, slowly, and counts itself in `calls` (one line per fetch, appended).
READER = """
import os, sys, time
import django
django.setup()
from core import filecache
name, calls, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
real = filecache.stored_fetch
def slow_fetch(stored, dst, storage=None):
    with open(calls, "a") as fh:
        fh.write("fetch\\n")
    tmp = dst + ".probe"
    real(stored, tmp, storage) if storage is not None else real(stored, tmp)
    data = open(tmp, "rb").read()
    os.unlink(tmp)
    with open(dst, "wb") as out:  # written in pieces: a reader must never see this half-written
        for start in range(0, len(data), 250_000):
            out.write(data[start:start + 250_000])
            out.flush()
            time.sleep(0.02)
filecache.stored_fetch = slow_fetch
with filecache.local_copy(name) as path:
    data = open(path, "rb").read()
    assert len(data) == expected, (len(data), expected)
    print(path)
    sys.stdout.buffer.write(data)
"""


def test_concurrent_processes_fetch_one_copy_and_never_see_a_partial_one(settings, tmp_path):
    import subprocess
    import sys

    from conftest import BASE_DIR

    data = os.urandom(2_000_000)
    name = _save("analyzer/c/original.csv", data)
    calls = tmp_path / "calls"
    calls.touch()
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings_test",
               PLATFORM_MEDIA_ROOT=str(settings.MEDIA_ROOT), PLATFORM_FILE_CACHE_DIR=str(settings.PLATFORM_FILE_CACHE_DIR))
    env.pop("PLATFORM_STORAGE_URL", None)
    readers = [subprocess.Popen([sys.executable, "-c", READER, name, str(calls), str(len(data))], cwd=BASE_DIR,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(4)]
    try:
        outputs = [reader.communicate(timeout=120) for reader in readers]
    finally:
        for reader in readers:
            if reader.poll() is None:
                reader.kill()
    assert [reader.returncode for reader in readers] == [0] * 4, [err.decode()[-2000:] for _, err in outputs]
    paths = {out.split(b"\n", 1)[0].decode() for out, _ in outputs}
    assert paths == {filecache._entry_path(name, stored_stat(name).version)}
    assert all(out.split(b"\n", 1)[1] == data for out, _ in outputs)  # every reader saw the whole file
    assert calls.read_text().count("fetch") == 1


def test_errors_shown_to_users_hide_the_cache_folder(settings):
    from core.jobkit import error_for_users

    settings.PLATFORM_FILE_CACHE_DIR = "/srv/platform-cache"  # under no other folder the text is cleaned of
    path = os.path.join(settings.PLATFORM_FILE_CACHE_DIR, "ab", "abcd", "0123.duckdb")
    text = error_for_users(OSError(f"IO Error: could not open {path}"))
    assert settings.PLATFORM_FILE_CACHE_DIR not in text and "0123.duckdb" in text
