"""The S3-compatible backend of the platform's storage (PLATFORM_STORAGE_URL=s3://…), on django-storages.

Imported only when the store is S3 (boto3 is heavy); core.storage holds the helpers code calls.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC

from botocore.exceptions import ClientError
from django.conf import settings
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

from core.storage import CHUNK, StoredRange, StoredStat


def _missing(err) -> bool:
    meta = getattr(err, "response", {}) or {}
    code = str(meta.get("Error", {}).get("Code", ""))
    return meta.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404 or code in ("NoSuchKey", "404", "NotFound")


class PlatformS3Storage(S3Storage):
    """django-storages' S3 backend with the platform's operations; objects are private (no ACL), never
    overwritten by an upload of the same name, and only appear once their upload completes."""

    default_acl = None
    file_overwrite = False

    def get_default_settings(self):
        defaults = super().get_default_settings()
        defaults.update(file_overwrite=False, default_acl=None, querystring_auth=True)
        return defaults

    def _key(self, name: str) -> str:
        return self._normalize_name(clean_name(name))

    @property
    def _client(self):
        return self.connection.meta.client

    def platform_staging_dir(self, name: str) -> str:
        return settings.FILE_UPLOAD_TEMP_DIR

    def platform_store_local_file(self, name: str, path: str, *, overwrite: bool) -> str:
        if not overwrite:
            name = self.get_available_name(name)
        params = self._get_write_parameters(self._key(name))
        # Multipart for large files; the object appears only when the upload completes.
        self.bucket.Object(self._key(name)).upload_file(path, ExtraArgs=params, Config=self.transfer_config)
        os.remove(path)
        return name

    def platform_stat(self, name: str) -> StoredStat:
        try:
            head = self._client.head_object(Bucket=self.bucket_name, Key=self._key(name))
        except ClientError as err:
            if _missing(err):
                raise FileNotFoundError(f"not stored: {name}") from None
            raise
        return StoredStat(size=int(head["ContentLength"]), modified=head["LastModified"].astimezone(UTC),
                          version=str(head.get("ETag", "")).strip('"') or head["LastModified"].isoformat())

    def platform_open_range(self, name: str, start: int, length: int) -> StoredRange:
        if length <= 0:
            self.platform_stat(name)
            return StoredRange(iter(()), None)
        try:
            answer = self._client.get_object(Bucket=self.bucket_name, Key=self._key(name),
                                             Range=f"bytes={start}-{start + length - 1}")
        except ClientError as err:
            if _missing(err):
                raise FileNotFoundError(f"not stored: {name}") from None
            raise
        body = answer["Body"]
        return StoredRange(body.iter_chunks(CHUNK), body.close)

    def platform_fetch(self, name: str, dst: str) -> None:
        try:
            self.bucket.Object(self._key(name)).download_file(dst, Config=self.transfer_config)
        except ClientError as err:
            if _missing(err):
                raise FileNotFoundError(f"not stored: {name}") from None
            raise

    def platform_tree_delete(self, prefix: str) -> None:
        keys = [self._key(name) for name, _ in self.platform_walk(prefix)]
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start:start + 1000]]
            self._client.delete_objects(Bucket=self.bucket_name, Delete={"Objects": batch, "Quiet": True})

    def platform_walk(self, prefix: str = "") -> Iterator[tuple[str, StoredStat]]:
        base = self._key(prefix) if prefix else (self.location.strip("/") if self.location else "")
        if base and not base.endswith("/"):
            base += "/"
        cut = len(self.location.strip("/")) + 1 if self.location else 0
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket_name, Prefix=base):
            for entry in page.get("Contents", ()):
                key = entry["Key"]
                if key.endswith("/"):
                    continue
                yield key[cut:], StoredStat(size=int(entry["Size"]), modified=entry["LastModified"].astimezone(UTC),
                                            version=str(entry.get("ETag", "")).strip('"'))

