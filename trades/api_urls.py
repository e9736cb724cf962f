from django.urls import path

from trades import api

app_name = "trades-api"

urlpatterns = [
    path("trades/exchanges/", api.ExchangeListApi.as_view(), name="exchange-list"),
    path("trades/tickers/", api.TickerListApi.as_view(), name="ticker-list"),
    path("trades/preview/", api.PreviewApi.as_view(), name="preview"),
    path("trades/expressions/validate/", api.ExpressionValidateApi.as_view(), name="expression-validate"),
    path("trades/exports/", api.ExportListCreateApi.as_view(), name="export-list"),
    path("trades/exports/latest/", api.ExportLatestApi.as_view(), name="export-latest"),
    path("trades/exports/<int:pk>/", api.ExportDetailApi.as_view(), name="export-detail"),
    path("trades/exports/<int:pk>/cancel/", api.ExportCancelApi.as_view(), name="export-cancel"),
    path("trades/exports/<int:pk>/download/", api.ExportDownloadApi.as_view(), name="export-download"),
]
