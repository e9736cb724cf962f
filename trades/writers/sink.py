"""Where an export's file is written: its storage name, a hashed sink published whole, leftovers of a crash.

Staging and publication are core's (`core.storage.staging_dir` / `publish`): the file is written under
a hidden temporary name and appears in storage only when complete.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import uuid
from pathlib import PurePosixPath

from core.storage import publish, staging_dir
from trades import conf

_WRITE_BUFFER = 1 << 20


class AtomicExportFile:
    """A binary sink that hashes what it writes and appears in storage only on `commit()`."""

    def __init__(self, name: str, *, tag: str = ""):
        self.name = name
        self.sha = hashlib.sha256()
        self.size = 0
        self._committed = False
        self.tmp_path = os.path.join(staging_dir(name), f"{tag}{'-' if tag else ''}{uuid.uuid4().hex}.part")
        self._fh = open(self.tmp_path, "wb", buffering=_WRITE_BUFFER)  # noqa: SIM115

    # file-like protocol used by gzip / pyarrow
    def write(self, data) -> int:
        self._fh.write(data)
        self.sha.update(data)
        n = len(data) if not isinstance(data, memoryview) else data.nbytes
        self.size += n
        return n

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._fh.flush()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return self._fh.closed

    def close(self) -> None:  # pyarrow closes its sink; the real close is commit/abort
        self._fh.flush()

    def commit(self) -> str:
        self._fh.close()
        saved = publish(self.name, self.tmp_path)
        self._committed = True
        return saved

    def abort(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        if not self._committed:
            try:
                os.remove(self.tmp_path)
            except FileNotFoundError:
                pass

    @property
    def hexdigest(self) -> str:
        return self.sha.hexdigest()


def header_bytes(columns: list[str]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(columns)
    return buf.getvalue().encode()


def export_storage_name(*, owner_id: int, pk: int, extension: str) -> str:
    return str(PurePosixPath(conf.EXPORT_DIR) / str(int(owner_id)) / f"export-{int(pk)}-{uuid.uuid4().hex[:8]}.{extension}")


def partial_files_remove(*, owner_id: int, tag: str) -> int:
    """Delete temporary files a crashed export left behind (its worker was killed)."""
    folder = staging_dir(export_storage_name(owner_id=owner_id, pk=0, extension="x"))
    removed = 0
    if os.path.isdir(folder):
        for entry in os.listdir(folder):
            if entry.startswith(f"{tag}-") and entry.endswith(".part"):
                os.remove(os.path.join(folder, entry))
                removed += 1
    return removed
