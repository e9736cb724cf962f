from django.urls import path

from core import views

app_name = "core"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("health/", views.health, name="health"),
    path("healthz", views.healthz, name="healthz"),
    path("health/worker-check/", views.worker_check_start, name="worker_check_start"),
    path("favicon.ico", views.favicon, name="favicon"),
]
