from django.urls import path

from scripts_runner import views

app_name = "scripts_runner"

urlpatterns = [
    path("", views.index, name="index"),
    path("<int:pk>/", views.script_detail, name="script_detail"),
    path("<int:pk>/run/", views.script_run, name="script_run"),
    path("<int:pk>/delete/", views.script_delete, name="script_delete"),
    path("runs/", views.run_list, name="run_list"),
    path("runs/<int:pk>/", views.run_detail, name="scriptrun_detail"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="run_cancel"),
    path("runs/<int:pk>/log/", views.run_log, name="run_log"),
    path("access/", views.access, name="access"),
]
