from django.conf import settings

NAV = [
    ("trades:index", "Trade export"),
    ("scripts_runner:index", "Scripts"),
    ("etl:index", "ETL"),
    ("analyzer:index", "CSV analyzer"),
    ("backtest:index", "Backtesting"),
]


def platform(request):
    from django.urls import NoReverseMatch, reverse

    nav = []
    for name, label in NAV:
        try:
            nav.append({"url": reverse(name), "label": label, "app": name.split(":")[0]})
        except NoReverseMatch:
            continue
    return {"platform_nav": nav, "signup_open": settings.ACCOUNT_ALLOW_SIGNUP}
