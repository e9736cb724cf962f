"""Local file storage whose writes are atomic: a crash never leaves a half-written file that looks done."""

import os
import tempfile

from django.conf import settings
from django.core.files import File
from django.core.files.move import file_move_safe
from django.core.files.storage import FileSystemStorage, default_storage


class AtomicFileSystemStorage(FileSystemStorage):
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


# --- files written in pieces (exports): staged locally, published whole ---------------------


def staging_dir(name: str, storage=None) -> str:
    """A local folder to write the file that will be stored as `name`.

    On local storage it is `.partial/` beside the final file (the same filesystem, so publishing
    is a rename); on remote storage the upload temporary folder. Created if missing.
    """
    storage = storage or default_storage
    try:
        folder = os.path.join(os.path.dirname(storage.path(name)), ".partial")
    except NotImplementedError:  # remote storage
        folder = settings.FILE_UPLOAD_TEMP_DIR
    os.makedirs(folder, exist_ok=True)
    return folder


def publish(name: str, path: str, storage=None) -> str:
    """Store the complete local file `path` as `name`, whole or not at all; `path` is gone afterwards.

    Local storage: an atomic rename into place. Remote storage: an upload through the storage API
    (the object appears only when the upload completes).
    """
    storage = storage or default_storage
    try:
        final_path = storage.path(name)
    except NotImplementedError:
        final_path = None
    if final_path:
        os.makedirs(os.path.dirname(final_path), exist_ok=True)
        os.replace(path, final_path)
        return name
    with open(path, "rb") as fh:
        saved = storage.save(name, File(fh))
    os.remove(path)
    return saved
