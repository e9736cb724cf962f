from django.urls import path

app_name = "scripts_runner"

urlpatterns: list = []
