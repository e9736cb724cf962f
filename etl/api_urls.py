from django.urls import path

from etl import api

urlpatterns = [
    path("etl/jobs/fetch/", api.FetchApi.as_view(), name="etl-api-fetch"),
    path("etl/jobs/", api.JobListApi.as_view(), name="etl-api-jobs"),
    path("etl/jobs/<int:pk>/", api.JobDetailApi.as_view(), name="etl-api-job"),
    path("etl/jobs/<int:pk>/retry/", api.JobRetryApi.as_view(), name="etl-api-job-retry"),
    path("etl/jobs/<int:pk>/cancel/", api.JobCancelApi.as_view(), name="etl-api-job-cancel"),
    path("etl/missing/", api.MissingApi.as_view(), name="etl-api-missing"),
    path("etl/missing/run/", api.MissingRunApi.as_view(), name="etl-api-missing-run"),
    path("etl/branches/", api.BranchListApi.as_view(), name="etl-api-branches"),
    path("etl/branches/<int:pk>/test-parse/", api.TestParseApi.as_view(), name="etl-api-test-parse"),
    path("etl/files/", api.FileListApi.as_view(), name="etl-api-files"),
    path("etl/files/<int:pk>/download/", api.FileDownloadApi.as_view(), name="etl-api-file-download"),
    path("etl/records/", api.RecordListApi.as_view(), name="etl-api-records"),
    path("etl/records/export/", api.RecordExportApi.as_view(), name="etl-api-records-export"),
    path("etl/exports/<int:pk>/", api.ExportDetailApi.as_view(), name="etl-api-export"),
    path("etl/exports/<int:pk>/download/", api.ExportDownloadApi.as_view(), name="etl-api-export-download"),
]
