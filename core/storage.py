"""Local file storage whose writes are atomic: a crash never leaves a half-written file that looks done."""

import os
import tempfile

from django.core.files import File
from django.core.files.move import file_move_safe
from django.core.files.storage import FileSystemStorage


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
