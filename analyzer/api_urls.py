from django.urls import path

from analyzer import api

urlpatterns = [
    path("analyzer/upload/", api.UploadApi.as_view(), name="analyzer-api-upload"),
    path("analyzer/sessions/", api.SessionListApi.as_view(), name="analyzer-api-sessions"),
    path("analyzer/sessions/<int:pk>/", api.SessionDetailApi.as_view(), name="analyzer-api-session"),
    path("analyzer/sessions/<int:pk>/results/<int:message_id>.csv", api.QueryResultCsvApi.as_view(),
         name="analyzer-api-result-csv"),
]
