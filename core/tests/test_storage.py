"""core.storage: files staged locally and published whole, on local and on remote-like storage."""

import os

from django.core.files.base import ContentFile
from django.core.files.storage import Storage

from core.storage import AtomicFileSystemStorage, publish, staging_dir


class RemoteLikeStorage(Storage):
    """Like an S3 store: objects by name, no local path (Storage.path raises NotImplementedError)."""

    def __init__(self):
        self.objects: dict[str, bytes] = {}

    def _save(self, name, content):
        self.objects[name] = content.read()
        return name

    def _open(self, name, mode="rb"):
        return ContentFile(self.objects[name], name=name)

    def exists(self, name):
        return name in self.objects


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
    assert os.stat(storage.path("exports/7/out.csv")).st_ino == inode  # renamed, not copied
    assert storage.open("exports/7/out.csv").read() == b"a,b\n"


def test_remote_storage_stages_in_the_upload_folder_and_uploads(tmp_path, settings):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "uploads")
    storage = RemoteLikeStorage()
    folder = staging_dir("exports/7/out.csv", storage)
    assert folder == str(tmp_path / "uploads") and os.path.isdir(folder)
    staged = os.path.join(folder, "x.part")
    with open(staged, "wb") as fh:
        fh.write(b"a,b\n")
    saved = publish("exports/7/out.csv", staged, storage)
    assert storage.open(saved).read() == b"a,b\n" and not os.path.exists(staged)
