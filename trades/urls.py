from django.urls import path

from trades import views

app_name = "trades"

urlpatterns = [
    path("", views.index, name="index"),
    path("expression/check/", views.expression_check, name="expression_check"),
    path("preview/", views.preview, name="preview"),
    path("exports/", views.export_list, name="export_list"),
    path("exports/start/", views.export_start, name="export_start"),
    path("exports/resume/", views.export_resume, name="export_resume"),
    path("exports/<int:pk>/", views.export_detail, name="export_detail"),
    path("exports/<int:pk>/cancel/", views.export_cancel, name="export_cancel"),
    path("exports/<int:pk>/download/", views.export_download, name="export_download"),
]
