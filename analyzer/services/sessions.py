"""Analyzer sessions: created from an upload (stored bytes, then a queued processing job), retitled, deleted."""

from __future__ import annotations

import os
import tempfile
import uuid
from contextlib import contextmanager

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from analyzer import conf
from analyzer.ingest import PARQUET_EXTENSIONS, IngestError, check_magic, file_extension
from analyzer.models import AnalysisSession, Answer, Message, Processing
from analyzer.services.messages import message_add
from core import services as core_services
from core.filecache import local_copy_path
from core.models import JobStatus
from core.storage import stored_save_upload, stored_tree_delete

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


def session_data_path(*, session: AnalysisSession) -> str:
    """A local path of the session's DuckDB file: this host's cached copy of the stored one."""
    return local_copy_path(session.data_name)


def session_files_remove(*, folder: str) -> None:
    if folder:
        stored_tree_delete(folder)


@contextmanager
def _upload_on_disk(upload):
    """A local path with the upload's bytes: Django's temporary file, or (a small upload kept in memory)
    a temporary copy."""
    temp_path = getattr(upload, "temporary_file_path", None)
    if temp_path is not None:
        yield temp_path()
        return
    fd, path = tempfile.mkstemp(prefix="analyzer-upload-", dir=settings.FILE_UPLOAD_TEMP_DIR)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        upload.seek(0)
        yield path
    finally:
        os.unlink(path)


def session_create_from_upload(*, owner, upload, auto_analyze: bool = True) -> AnalysisSession:
    """Check what is cheap (name, extension, size, magic bytes), store the bytes, create the session
    and queue its processing job (which then starts the auto-analysis when `auto_analyze`).

    Raises ValidationError (no session, no files left) for what the cheap checks refuse; everything
    else (parsing, "no rows"…) is found by the processing job and ends it failed with the reason.
    """
    filename = os.path.basename(str(getattr(upload, "name", "") or "")).strip()[:255]
    if not filename:
        raise ValidationError({"file": "The file has no name."})
    ext = file_extension(filename)
    if ext is None:
        raise ValidationError({"file": "Unsupported file type: upload a .csv, .csv.gz, .parquet or .pq file."})
    size = int(getattr(upload, "size", 0) or 0)
    if size == 0:
        raise ValidationError({"file": "The file is empty."})
    if size > conf.MAX_UPLOAD_BYTES:
        raise ValidationError({"file": f"The file is too large ({size:,} bytes); the limit is "
                                       f"{conf.MAX_UPLOAD_BYTES:,} bytes."})
    folder = f"{conf.STORAGE_PREFIX}/{uuid.uuid4().hex}"
    os.makedirs(settings.FILE_UPLOAD_TEMP_DIR, exist_ok=True)
    try:
        with _upload_on_disk(upload) as local:
            check_magic(path=local, filename=filename)
    except IngestError as exc:
        raise ValidationError({"file": str(exc)}) from None
    try:
        # A large upload already sits in Django's temporary file: moved into place, never read here.
        original_name = stored_save_upload(f"{folder}/original{ext}", upload)
    except BaseException:
        session_files_remove(folder=folder)
        raise
    try:
        with transaction.atomic():
            session = AnalysisSession(
                owner=owner,
                title=filename[:200],
                filename=filename,
                file_format=AnalysisSession.Format.PARQUET if ext in PARQUET_EXTENSIONS else AnalysisSession.Format.CSV,
                file_size=size,
                storage_dir=folder,
                original_name=original_name,
                data_name=f"{folder}/data.duckdb",
            )
            session.full_clean(exclude=["columns", "preview", "profile", "detection"])  # filled by the job
            session.save()
            job = Processing(owner=owner, session=session, auto_analyze=bool(auto_analyze),
                             message="Waiting for a worker…")
            job.save()
            core_services.job_enqueue(job=job)  # sent after the outermost commit
    except BaseException:
        session_files_remove(folder=folder)
        raise
    session.processing = job
    return session


def session_delete(*, session: AnalysisSession) -> None:
    """Delete the session, its messages and answers, and (after commit) its files."""
    folder = session.storage_dir
    with transaction.atomic():
        Answer.objects.filter(session=session, status__in=ACTIVE).update(cancel_requested=True)
        session.delete()
        transaction.on_commit(lambda: session_files_remove(folder=folder))


def session_title_set(*, session: AnalysisSession, title: str, answer: Answer | None = None) -> None:
    title = " ".join(str(title).split())[:200] or session.filename
    AnalysisSession.objects.filter(pk=session.pk).update(title=title, title_generated=True)
    session.title, session.title_generated = title, True
    message_add(session=session, answer=answer, kind=Message.Kind.SESSION_UPDATE, data={"title": title})
