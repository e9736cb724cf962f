from django.urls import path

app_name = "trades"

urlpatterns: list = []
