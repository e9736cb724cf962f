from django.urls import path

from scripts_runner import api

app_name = "scripts_runner_api"

urlpatterns = [
    path("scripts/", api.ScriptListCreateApi.as_view(), name="script_list"),
    path("scripts/<int:pk>/", api.ScriptDetailApi.as_view(), name="script_detail"),
    path("scripts/<int:pk>/runs/", api.ScriptRunsApi.as_view(), name="script_runs"),
    path("runs/", api.RunListApi.as_view(), name="run_list"),
    path("runs/<int:pk>/", api.RunDetailApi.as_view(), name="run_detail"),
    path("runs/<int:pk>/cancel/", api.RunCancelApi.as_view(), name="run_cancel"),
    path("runs/<int:pk>/log/", api.RunLogApi.as_view(), name="run_log"),
]
