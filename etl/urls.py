from django.urls import path

from etl import views

app_name = "etl"

urlpatterns = [
    path("", views.index, name="index"),
    path("jobs/", views.job_list, name="job_list"),
    path("jobs/<int:pk>/", views.fetchjob_detail, name="fetchjob_detail"),
    path("jobs/<int:pk>/<str:action>/", views.job_action, name="job_action"),
    path("files/", views.file_list, name="file_list"),
    path("files/<int:pk>/", views.file_detail, name="file_detail"),
    path("files/<int:pk>/download/", views.file_download, name="file_download"),
    path("fetch/", views.fetch_now, name="fetch"),
    path("missing/", views.missing, name="missing"),
    path("missing/confirm/", views.missing_confirm, name="missing_confirm"),
    path("missing/run/", views.missing_run, name="missing_run"),
    path("branches/", views.branch_list, name="branch_list"),
    path("branches/new/", views.branch_create, name="branch_create"),
    path("branches/<int:pk>/", views.branch_edit, name="branch_edit"),
    path("branches/test-parse/", views.branch_test_parse, name="branch_test_parse"),
    path("records/", views.record_list, name="record_list"),
    path("records/export/", views.record_export, name="record_export"),
    path("exports/<int:pk>/", views.recordexport_detail, name="recordexport_detail"),
    path("exports/<int:pk>/download/", views.recordexport_download, name="recordexport_download"),
]
