"""REST API of the ETL app (token auth). One view per operation; services do the work.

One module per resource: `jobs` (fetch jobs), `missing` (the missing-data calendar), `branches`
(with the test parse), `files` (stored POS files) and `records` (records and their exports);
`fields` and `responses` hold what they share (a stored file's download is etl.downloads, the pages' too). The URLs (etl.api_urls) use the names below.
"""

from etl.api.branches import BranchListApi, TestParseApi
from etl.api.files import FileDownloadApi, FileListApi
from etl.api.jobs import FetchApi, JobCancelApi, JobDetailApi, JobListApi, JobRetryApi
from etl.api.missing import MissingApi, MissingRunApi
from etl.api.records import ExportDetailApi, ExportDownloadApi, RecordExportApi, RecordListApi

__all__ = [
    "BranchListApi", "ExportDetailApi", "ExportDownloadApi", "FetchApi", "FileDownloadApi", "FileListApi",
    "JobCancelApi", "JobDetailApi", "JobListApi", "JobRetryApi", "MissingApi", "MissingRunApi", "RecordExportApi",
    "RecordListApi", "TestParseApi",
]
