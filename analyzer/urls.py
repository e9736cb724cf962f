from django.urls import path

app_name = "analyzer"

urlpatterns: list = []
