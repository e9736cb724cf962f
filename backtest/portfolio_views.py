"""Pages of portfolio runs: list, new (the form with its rules), detail (progress, then charts), cancel."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from backtest import portfolio_services, selectors
from backtest.forms import PortfolioForm
from backtest.metrics import METRICS
from backtest.portfolio_engine import PORTFOLIO_RULES
from backtest.views import _service_errors_to_form, _strategy_schemas
from core.permissions import found_or_404
from core.services import job_cancel


@login_required
def portfolio_list(request):
    return render(request, "backtest/portfolio_list.html",
                  {"portfolios": selectors.portfolio_list(user=request.user)[:200]})


@login_required
def portfolio_new(request):
    form = PortfolioForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        data["instruments"] = list(data["instruments"])
        try:
            portfolio = portfolio_services.portfolio_create(owner=request.user, **data)
        except ValidationError as exc:
            _service_errors_to_form(form, exc)
        else:
            return redirect("backtest:portfolio_detail", pk=portfolio.pk)
    return render(request, "backtest/portfolio_new.html", {"form": form, "rules": PORTFOLIO_RULES,
                                                           "schemas": _strategy_schemas()})


@login_required
def portfolio_detail(request, pk: int):
    portfolio = found_or_404(selectors.portfolio_get_for_viewer(user=request.user, pk=pk))
    context = {"portfolio": portfolio, "rules": PORTFOLIO_RULES, "metrics_meta": METRICS}
    if portfolio.is_finished:
        context |= selectors.portfolio_report(portfolio=portfolio)
    if request.htmx:
        response = render(request, "backtest/partials/portfolio_body.html", context)
        if portfolio.is_finished:
            response["HX-Refresh"] = "true"  # full page once: charts and scripts load cleanly
        return response
    return render(request, "backtest/portfolio_detail.html", context)


@login_required
@require_POST
def portfolio_cancel(request, pk: int):
    portfolio = found_or_404(selectors.portfolio_get_for_viewer(user=request.user, pk=pk))
    if not portfolio.is_finished:
        job_cancel(job=portfolio, by=request.user)
        messages.info(request, "Cancelling the portfolio run…")
    return redirect("backtest:portfolio_detail", pk=portfolio.pk)
