from django.urls import path

app_name = "backtest"

urlpatterns: list = []
