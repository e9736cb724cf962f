"""Worker-local cached copies of stored files, for work that needs a file on this host's disk.

DuckDB, the bar importer and the analyzer's loader read local files; the store may be another host's
disk or an S3 bucket. `local_copy(name)` answers a local path holding the stored object's current
content, fetched once per host and reused while it stays in the cache:

- an entry is keyed by the stored name and its version (the S3 ETag; size, mtime and inode on local
  disk), so a changed object is never answered from an old copy;
- it is fetched under a temporary name and renamed into place, under a per-name lock file (`flock`),
  so concurrent processes fetch it once and never see a half-written copy;
- the cache is kept under PLATFORM_FILE_CACHE_MAX_BYTES by evicting the least recently used entries
  that no process holds (`local_copy` holds a shared lock on its entry while the block runs);
- on local disk an entry is a hard link to the stored file when both share a filesystem: no copy, and
  no cache space counted for it.

Nothing here is a record: deleting the whole cache folder at any time only costs downloads.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from core.storage import stored_fetch, stored_stat

LOCK = ".lock"
STALE_TEMP_SECONDS = 3600


def cache_root() -> str:
    return str(settings.PLATFORM_FILE_CACHE_DIR)


def cache_max_bytes() -> int:
    return int(settings.PLATFORM_FILE_CACHE_MAX_BYTES)


def _name_dir(name: str) -> str:
    digest = hashlib.sha256(name.encode()).hexdigest()
    return os.path.join(cache_root(), digest[:2], digest)


def _entry_path(name: str, version: str) -> str:
    # Keep the stored name's suffix: readers choose by it (".csv.gz" is two).
    suffix = ".csv.gz" if name.endswith(".csv.gz") else os.path.splitext(name)[1][:16]
    return os.path.join(_name_dir(name), hashlib.sha256(version.encode()).hexdigest()[:32] + suffix)


@contextmanager
def _name_lock(name: str, mode: int):
    folder = _name_dir(name)
    os.makedirs(folder, exist_ok=True)
    fd = os.open(os.path.join(folder, LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, mode)
        yield fd
    finally:
        os.close(fd)


def _touch(path: str) -> None:
    """Mark an entry as just used (its access time; the mtime may be the stored file's, through a link)."""
    try:
        st = os.stat(path)
        os.utime(path, ns=(time.time_ns(), st.st_mtime_ns))
    except OSError:
        pass


def _fetch(name: str, entry: str, storage) -> None:
    tmp = os.path.join(os.path.dirname(entry), f".tmp-{uuid.uuid4().hex}")
    try:
        stored_fetch(name, tmp, storage)
        os.replace(tmp, entry)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _ensure(name: str, storage, lock_fd: int) -> str:
    """With a shared lock held on `lock_fd`: the entry of the object's current version, fetched if needed."""
    entry = _entry_path(name, stored_stat(name, storage).version)
    if not os.path.exists(entry):
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        try:
            if not os.path.exists(entry):
                _fetch(name, entry, storage)
                _drop_other_versions(entry)
        finally:
            fcntl.flock(lock_fd, fcntl.LOCK_SH)
    _touch(entry)
    return entry


@contextmanager
def local_copy(name: str, *, storage=None) -> Iterator[str]:
    """A local path with the stored object `name`, held (never evicted) while the block runs.

    Raises FileNotFoundError when the object is not stored.
    """
    with _name_lock(name, fcntl.LOCK_SH) as fd:
        entry = _ensure(name, storage, fd)
        yield entry
    evict()


def local_copy_path(name: str, *, storage=None) -> str:
    """Like `local_copy`, for a caller that opens the file at once and keeps it open (DuckDB's connection):
    the entry is the most recently used one, so eviction takes every other entry before it."""
    with _name_lock(name, fcntl.LOCK_SH) as fd:
        entry = _ensure(name, storage, fd)
    evict(keep=entry)
    return entry


def stage_path(name: str) -> str:
    """A temporary path inside the cache, on the cache's filesystem, for a file `adopt` will take."""
    folder = _name_dir(name)
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f".tmp-{uuid.uuid4().hex}")


def adopt(name: str, path: str, *, storage=None) -> str:
    """Make the local file `path` (the content just stored as `name`) this host's cached copy of it."""
    try:
        with _name_lock(name, fcntl.LOCK_EX):
            entry = _entry_path(name, stored_stat(name, storage).version)
            os.replace(path, entry)
            _drop_other_versions(entry)
            _touch(entry)
    finally:
        if os.path.exists(path):
            os.unlink(path)
    evict(keep=entry)
    return entry


def discard(name: str) -> None:
    """Drop this host's copies of `name` (the stored object was deleted); one held right now stays."""
    folder = _name_dir(name)
    if not os.path.isdir(folder):
        return
    fd = os.open(os.path.join(folder, LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return
        for entry in os.listdir(folder):
            if entry != LOCK and not entry.startswith(".tmp-"):
                _unlink(os.path.join(folder, entry))
    finally:
        os.close(fd)


def _drop_other_versions(entry: str) -> None:
    folder, keep = os.path.split(entry)
    for other in os.listdir(folder):
        if other not in (keep, LOCK) and not other.startswith(".tmp-"):
            _unlink(os.path.join(folder, other))


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _occupied(st: os.stat_result) -> int:
    # A hard link to a stored file on the same disk takes no space of the cache's own.
    return 0 if st.st_nlink > 1 else st.st_size


def cache_entries() -> list[tuple[str, os.stat_result]]:
    """Every cached copy (path, stat); temporary files older than an hour are removed on the way."""
    root = cache_root()
    found = []
    now = time.time()
    if not os.path.isdir(root):
        return found
    for shard in os.scandir(root):
        if not shard.is_dir(follow_symlinks=False) or shard.name.startswith("."):
            continue
        for name_dir in os.scandir(shard.path):
            if not name_dir.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(name_dir.path):
                if entry.name == LOCK:
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if entry.name.startswith(".tmp-"):
                    if st.st_mtime < now - STALE_TEMP_SECONDS:
                        _unlink(entry.path)
                    continue
                found.append((entry.path, st))
    return found


def cache_size() -> int:
    return sum(_occupied(st) for _, st in cache_entries())


def evict(*, keep: str | None = None) -> int:
    """Remove least recently used copies until the cache fits its size; answers the bytes freed.

    One process evicts at a time (others skip: the one evicting frees the room for everyone); a copy
    some process holds, and `keep`, are never removed.
    """
    root = cache_root()
    os.makedirs(root, exist_ok=True)
    guard = os.open(os.path.join(root, ".evict.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0
        entries = cache_entries()
        total = sum(_occupied(st) for _, st in entries)
        limit = cache_max_bytes()
        freed = 0
        for path, st in sorted(entries, key=lambda item: item[1].st_atime_ns):
            if total <= limit:
                break
            if path == keep or _occupied(st) == 0:
                continue
            fd = os.open(os.path.join(os.path.dirname(path), LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # in use right now
                _unlink(path)
            finally:
                os.close(fd)
            total -= _occupied(st)
            freed += _occupied(st)
        return freed
    finally:
        os.close(guard)
