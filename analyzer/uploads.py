"""An upload handler that stops reading a file beyond the configured size (no 1 GB+ temp files)."""

from django.core.files.uploadhandler import FileUploadHandler, StopUpload

from analyzer import conf

TOO_LARGE_ATTR = "analyzer_upload_too_large"


class UploadSizeLimitHandler(FileUploadHandler):
    def receive_data_chunk(self, raw_data, start):
        if start + len(raw_data) > conf.MAX_UPLOAD_BYTES:
            setattr(self.request, TOO_LARGE_ATTR, True)
            # connection_reset=False: the rest of the body is read and discarded so a proper answer goes back.
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size):
        return None


def install_size_limit(request) -> None:
    """Call before the body is parsed (before request.POST / request.FILES / request.data)."""
    request.upload_handlers.insert(0, UploadSizeLimitHandler(request))


def too_large_message() -> str:
    return f"The file is too large; the limit is {conf.MAX_UPLOAD_BYTES:,} bytes."
