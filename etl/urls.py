from django.urls import path

app_name = "etl"

urlpatterns: list = []
