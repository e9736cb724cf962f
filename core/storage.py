"""The platform's one storage API: local disk or an S3-compatible store, chosen by PLATFORM_STORAGE_URL.

Everything a user uploads or the platform produces is stored through these helpers (and Django's
storage API, which both backends implement). No code asks a stored file for a local path: work that
needs one takes a worker-local cached copy (`core.filecache.local_copy`).

- `storage_settings(url)`: the STORAGES["default"] entry for a PLATFORM_STORAGE_URL.
- `AtomicFileSystemStorage` / `PlatformS3Storage`: the two backends; writes are atomic on both (a
  local temporary name renamed into place; an S3 object appears only when its upload completes).
- `stored_stat`, `stored_open_range`: what a download needs (size, modified time, ETag, a byte range),
  opened before any header is sent.
- `stored_save_upload`, `staging_dir` + `publish`: storing an upload or a locally built file whole.
- `stored_delete`, `stored_tree_delete`, `stored_walk`: deletion (also of the local cached copies) and
  the listing the orphan cleanup uses.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.core.files import File
from django.core.files.move import file_move_safe
from django.core.files.storage import FileSystemStorage, default_storage

CHUNK = 1 << 20

# --- choosing the backend -------------------------------------------------------------------------

S3_QUERY_OPTIONS = {
    "endpoint_url": "endpoint_url",  # an S3-compatible server (MinIO, Ceph, moto…); unset for AWS
    "region": "region_name",
    "addressing_style": "addressing_style",  # "path" for most self-hosted servers, "virtual", "auto"
    "verify": "verify",  # "false" to skip TLS verification, or the path of a CA bundle
}


def storage_settings(url: str) -> tuple[dict, str | None]:
    """The STORAGES["default"] entry for `url`, and the local media folder it names (None on S3).

    `file:///var/lib/platform/media` (or a bare absolute path): local disk under that folder.
    `s3://bucket[/prefix]?endpoint_url=http://127.0.0.1:9000&region=eu-west-1&addressing_style=path`:
    an S3-compatible store; credentials come from the standard AWS_* variables (AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE…) as boto3 reads them.
    """
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme in ("", "file"):
        folder = unquote(parts.path if parts.scheme else url)
        if parts.netloc not in ("", "localhost") or not os.path.isabs(folder):
            raise ImproperlyConfigured(f"PLATFORM_STORAGE_URL {url!r}: a local store is file:///absolute/path.")
        return {"BACKEND": "core.storage.AtomicFileSystemStorage"}, folder
    if parts.scheme != "s3":
        raise ImproperlyConfigured(f"PLATFORM_STORAGE_URL {url!r}: use file:///path or s3://bucket/prefix.")
    if not parts.hostname:
        raise ImproperlyConfigured(f"PLATFORM_STORAGE_URL {url!r}: s3:// needs a bucket name.")
    if parts.username or parts.password:
        raise ImproperlyConfigured("PLATFORM_STORAGE_URL must not hold credentials: set AWS_ACCESS_KEY_ID and "
                                   "AWS_SECRET_ACCESS_KEY instead.")
    options = {"bucket_name": parts.netloc, "location": unquote(parts.path).strip("/")}
    for key, values in parse_qs(parts.query, keep_blank_values=True).items():
        if key not in S3_QUERY_OPTIONS:
            raise ImproperlyConfigured(f"PLATFORM_STORAGE_URL: unknown option {key!r} (known: "
                                       f"{', '.join(sorted(S3_QUERY_OPTIONS))}).")
        value = values[-1]
        if key == "verify":
            value = False if value.lower() in ("0", "false", "no", "off") else (True if value.lower() in (
                "1", "true", "yes", "on") else value)
        options[S3_QUERY_OPTIONS[key]] = value
    return {"BACKEND": "core.storage_s3.PlatformS3Storage", "OPTIONS": options}, None


# --- what a stored object is ----------------------------------------------------------------------


@dataclass(frozen=True)
class StoredStat:
    size: int
    modified: datetime  # aware, UTC
    version: str  # changes whenever the object's content may have changed (S3 ETag; size+mtime+inode)


class StoredRange:
    """An opened byte range of a stored object: iterate it for its chunks; close it when done."""

    def __init__(self, chunks: Iterator[bytes], close):
        self._chunks = chunks
        self._close = close

    def __iter__(self):
        try:
            yield from self._chunks
        finally:
            self.close()

    def close(self) -> None:
        if self._close is not None:
            close, self._close = self._close, None
            close()


# --- local disk -----------------------------------------------------------------------------------


class AtomicFileSystemStorage(FileSystemStorage):
    """Local disk whose writes are atomic: a crash never leaves a half-written file that looks done."""

    def _save(self, name, content):
        full_path = self.path(name)
        directory = os.path.dirname(full_path)
        os.makedirs(directory, exist_ok=True)
        # Write beside the target (same filesystem), then rename into place.
        fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=".part-", suffix=os.path.basename(full_path)[-40:])
        try:
            with os.fdopen(fd, "wb") as out:
                if hasattr(content, "chunks"):
                    for chunk in content.chunks():
                        out.write(chunk)
                else:
                    out.write(File(content).read())
                out.flush()
                os.fsync(out.fileno())
            name = self.get_available_name(name)
            full_path = self.path(name)
            file_move_safe(tmp_path, full_path, allow_overwrite=False)
            if self.file_permissions_mode is not None:
                os.chmod(full_path, self.file_permissions_mode)
        except BaseException:
            if os.path.exists(tmp_path):
                os.unlink(tmp_path)
            raise
        return str(name).replace("\\", "/")

    # The platform's own operations (what core's helpers below call).

    def platform_staging_dir(self, name: str) -> str:
        return os.path.join(os.path.dirname(self.path(name)), ".partial")

    def platform_store_local_file(self, name: str, path: str, *, overwrite: bool) -> str:
        """Store the local file `path` as `name` by a rename (a copy then a rename across filesystems)."""
        if not overwrite:
            name = self.get_available_name(name)
        final_path = self.path(name)
        os.makedirs(os.path.dirname(final_path), exist_ok=True)
        try:
            os.replace(path, final_path)
        except OSError:  # another filesystem: copy beside the target, then rename
            fd, tmp_path = tempfile.mkstemp(dir=os.path.dirname(final_path), prefix=".part-")
            os.close(fd)
            try:
                shutil.copyfile(path, tmp_path)
                os.replace(tmp_path, final_path)
            except BaseException:
                if os.path.exists(tmp_path):
                    os.unlink(tmp_path)
                raise
            os.remove(path)
        if self.file_permissions_mode is not None:
            os.chmod(final_path, self.file_permissions_mode)
        return str(name).replace("\\", "/")

    def platform_stat(self, name: str) -> StoredStat:
        st = os.stat(self.path(name))
        return StoredStat(size=st.st_size, modified=datetime.fromtimestamp(st.st_mtime, tz=UTC),
                          version=f"{st.st_size:x}-{st.st_mtime_ns:x}-{st.st_ino:x}")

    def platform_open_range(self, name: str, start: int, length: int) -> StoredRange:
        fh = open(self.path(name), "rb")  # noqa: SIM115  (closed by the StoredRange)
        fh.seek(start)
        return StoredRange(_read_chunks(fh, length), fh.close)

    def platform_fetch(self, name: str, dst: str) -> None:
        """Put the stored file at the local path `dst`: a hard link when it can (no copy), else a copy."""
        src = self.path(name)
        try:
            os.link(src, dst)
        except OSError:
            if not os.path.exists(src):
                raise FileNotFoundError(f"not stored: {name}") from None
            shutil.copyfile(src, dst)

    def platform_tree_delete(self, prefix: str) -> None:
        shutil.rmtree(self.path(prefix), ignore_errors=True)

    def platform_walk(self, prefix: str = "") -> Iterator[tuple[str, StoredStat]]:
        root = self.path(prefix) if prefix else self.location
        for folder, _dirs, files in os.walk(root):
            for filename in files:
                full = os.path.join(folder, filename)
                name = os.path.relpath(full, self.location).replace(os.sep, "/")
                try:
                    yield name, self.platform_stat(name)
                except FileNotFoundError:
                    continue


def _read_chunks(fh, length: int) -> Iterator[bytes]:
    remaining = length
    while remaining > 0:
        block = fh.read(min(CHUNK, remaining))
        if not block:
            break
        remaining -= len(block)
        yield block


# --- the helpers code calls (default storage unless told) ----------------------------------------


def _platform(storage, operation: str):
    storage = storage or default_storage
    method = getattr(storage, operation, None)
    if method is None:
        raise ImproperlyConfigured(f"{type(storage).__name__} is not one of the platform's storages "
                                   "(core.storage.AtomicFileSystemStorage, core.storage_s3.PlatformS3Storage).")
    return method


def storage_is_local(storage=None) -> bool:
    return isinstance(storage or default_storage, FileSystemStorage)


def stored_stat(name: str, storage=None) -> StoredStat:
    """Size, modified time and version of a stored object; FileNotFoundError when it is not stored."""
    if not name:
        raise FileNotFoundError("no file name")
    return _platform(storage, "platform_stat")(name)


def stored_exists(name: str, storage=None) -> bool:
    """Whether the store holds `name`. A store that cannot answer raises (never read as "absent")."""
    return bool(name) and (storage or default_storage).exists(name)


def stored_open_range(name: str, start: int = 0, length: int | None = None, storage=None) -> StoredRange:
    """Open `length` bytes from `start` (the rest of the object when None); raises FileNotFoundError at
    once (before a caller sends any header) when the object is not stored."""
    if length is None:
        length = stored_stat(name, storage).size - start
    return _platform(storage, "platform_open_range")(name, start, max(0, length))


def stored_save_upload(name: str, upload, storage=None) -> str:
    """Store an uploaded file under `name` (or a free name beside it); answer the stored name.

    An upload Django already streamed to a temporary file is moved (local disk: a rename) or uploaded
    from it (S3: multipart), never read into memory.
    """
    temp_path = getattr(upload, "temporary_file_path", None)
    if temp_path is not None:
        try:
            path = temp_path()
        except (AttributeError, NotImplementedError):
            path = None
        if path and os.path.exists(path):
            return _platform(storage, "platform_store_local_file")(name, path, overwrite=False)
    return (storage or default_storage).save(name, upload)


def staging_dir(name: str, storage=None) -> str:
    """A local folder to write the file that will be stored as `name`.

    On local storage it is `.partial/` beside the final file (the same filesystem, so publishing
    is a rename); on remote storage the upload temporary folder. Created if missing.
    """
    folder = _platform(storage, "platform_staging_dir")(name)
    os.makedirs(folder, exist_ok=True)
    return folder


def publish(name: str, path: str, storage=None, *, keep_local_copy: bool = False) -> str:
    """Store the complete local file `path` as `name`, whole or not at all; `path` is gone afterwards.

    Local storage: an atomic rename into place. Remote storage: an upload through the storage API
    (the object appears only when the upload completes). `keep_local_copy`: the file also becomes this
    host's cached copy (`core.filecache`), so work here that reads it back downloads nothing.
    """
    from core import filecache

    storage = storage or default_storage
    if keep_local_copy and not storage_is_local(storage):
        kept = filecache.stage_path(name)
        try:
            if _same_device(path, kept):
                os.link(path, kept)  # the upload below removes `path`; the link keeps the bytes
            else:
                shutil.copyfile(path, kept)
            saved = _platform(storage, "platform_store_local_file")(name, path, overwrite=True)
        except BaseException:
            if os.path.exists(kept):
                os.unlink(kept)
            raise
        filecache.adopt(saved, kept, storage=storage)
        return saved
    return _platform(storage, "platform_store_local_file")(name, path, overwrite=True)


def _same_device(path: str, other: str) -> bool:
    try:
        return os.stat(path).st_dev == os.stat(os.path.dirname(other)).st_dev
    except OSError:
        return False


def stored_delete(name: str, storage=None) -> None:
    """Delete a stored object (absent is fine) and this host's cached copy of it."""
    from core import filecache

    if not name:
        return
    (storage or default_storage).delete(name)
    filecache.discard(name)


def stored_tree_delete(prefix: str, storage=None) -> None:
    """Delete every stored object under the folder `prefix` (and this host's cached copies)."""
    from core import filecache

    prefix = (prefix or "").strip("/")
    if not prefix:
        raise ValueError("refusing to delete the whole store")
    storage = storage or default_storage
    names = [name for name, _ in _platform(storage, "platform_walk")(prefix)]
    _platform(storage, "platform_tree_delete")(prefix)
    for name in names:
        filecache.discard(name)


def stored_walk(prefix: str = "", storage=None) -> Iterator[tuple[str, StoredStat]]:
    """Every stored object (under `prefix`), with its size, modified time and version."""
    return _platform(storage, "platform_walk")(prefix)


def stored_fetch(name: str, dst: str, storage=None) -> None:
    """Write the stored object to the local path `dst` (core.filecache's way in; use `local_copy`)."""
    _platform(storage, "platform_fetch")(name, dst)
