from django.urls import path

from backtest import portfolio_views, views

app_name = "backtest"

urlpatterns = [
    path("", views.index, name="index"),
    path("market/<str:symbol>/", views.instrument_detail, name="instrument_detail"),
    path("imports/new/", views.bars_import, name="bars_import"),
    path("imports/<int:pk>/", views.barimport_detail, name="barimport_detail"),
    path("runs/", views.run_list, name="run_list"),
    path("runs/new/", views.run_new, name="run_new"),
    path("runs/<int:pk>/", views.run_detail, name="backtestrun_detail"),
    path("sweeps/", views.sweep_list, name="sweep_list"),
    path("sweeps/new/", views.sweep_new, name="sweep_new"),
    path("sweeps/<int:pk>/", views.sweep_detail, name="sweep_detail"),
    path("sweeps/<int:pk>/heatmap/", views.sweep_heatmap, name="sweep_heatmap"),
    path("sweeps/<int:pk>/cancel/", views.sweep_cancel, name="sweep_cancel"),
    path("sweeps/<int:pk>/results/<int:seq>/open/", views.sweep_result_open, name="sweep_result_open"),
    path("portfolios/", portfolio_views.portfolio_list, name="portfolio_list"),
    path("portfolios/new/", portfolio_views.portfolio_new, name="portfolio_new"),
    path("portfolios/<int:pk>/", portfolio_views.portfolio_detail, name="portfolio_detail"),
    path("portfolios/<int:pk>/cancel/", portfolio_views.portfolio_cancel, name="portfolio_cancel"),
]
