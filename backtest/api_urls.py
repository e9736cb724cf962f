from django.urls import path

from backtest import api, portfolio_api

urlpatterns = [
    path("market/instruments/", api.InstrumentListApi.as_view(), name="api-market-instruments"),
    path("market/prices/", api.PriceListApi.as_view(), name="api-market-prices"),
    path("market/latest/", api.LatestPriceApi.as_view(), name="api-market-latest"),
    path("market/stats/", api.StatsApi.as_view(), name="api-market-stats"),
    path("market/import/", api.ImportApi.as_view(), name="api-market-import"),
    path("market/imports/<int:pk>/", api.ImportDetailApi.as_view(), name="api-market-import-detail"),
    path("backtest/strategies/", api.StrategyListApi.as_view(), name="api-backtest-strategies"),
    path("backtest/runs/", api.RunListCreateApi.as_view(), name="api-backtest-runs"),
    path("backtest/runs/<int:pk>/", api.RunDetailApi.as_view(), name="api-backtest-run-detail"),
    path("backtest/sweeps/", api.SweepListCreateApi.as_view(), name="api-backtest-sweeps"),
    path("backtest/sweeps/<int:pk>/", api.SweepDetailApi.as_view(), name="api-backtest-sweep-detail"),
    path("backtest/sweeps/<int:pk>/cancel/", api.SweepCancelApi.as_view(), name="api-backtest-sweep-cancel"),
    path("backtest/portfolios/", portfolio_api.PortfolioListCreateApi.as_view(), name="api-backtest-portfolios"),
    path("backtest/portfolios/<int:pk>/", portfolio_api.PortfolioDetailApi.as_view(),
         name="api-backtest-portfolio-detail"),
    path("backtest/portfolios/<int:pk>/cancel/", portfolio_api.PortfolioCancelApi.as_view(),
         name="api-backtest-portfolio-cancel"),
]
