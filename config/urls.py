from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core.api_views import api_not_found

urlpatterns = [
    path("", include("core.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("", include("accounts.urls")),
    path("trades/", include("trades.urls")),
    path("scripts/", include("scripts_runner.urls")),
    path("etl/", include("etl.urls")),
    path("analyzer/", include("analyzer.urls")),
    path("backtest/", include("backtest.urls")),
    # API: each app's api_urls carries its own prefix (trades/, scripts/, runs/, etl/, …).
    path("api/", include("core.api_urls")),
    path("api/", include("accounts.api_urls")),
    path("api/", include("trades.api_urls")),
    path("api/", include("scripts_runner.api_urls")),
    path("api/", include("etl.api_urls")),
    path("api/", include("analyzer.api_urls")),
    path("api/", include("backtest.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up code as a script of its own (no inline script: CSP).
    # No ReDoc page: ReDoc injects its styles at run time (style-src would need 'unsafe-inline').
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    # Last: any other /api/ path answers a JSON 404.
    re_path(r"^api/", api_not_found),
]
