from django.urls import path

from analyzer import views

app_name = "analyzer"

urlpatterns = [
    path("", views.index, name="index"),
    path("upload/", views.upload, name="upload"),
    path("sessions/<int:pk>/", views.session_detail, name="session_detail"),
    path("sessions/<int:pk>/delete/", views.session_delete, name="session_delete"),
    path("sessions/<int:pk>/results/<int:message_id>.csv", views.result_csv, name="result_csv"),
]
