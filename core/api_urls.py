from django.urls import path

from core import api_views

urlpatterns = [
    path("", api_views.ApiIndexApi.as_view(), name="api-index"),
    path("health/", api_views.HealthApi.as_view(), name="api-health"),
]
