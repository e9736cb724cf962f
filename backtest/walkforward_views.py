"""Pages of walk-forward optimizations: list, form (with its rules), live progress and result, cancel."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from backtest import selectors, walkforward_services
from backtest.consumers import WalkForwardStream
from backtest.engine import SEMANTICS
from backtest.forms import WalkForwardForm
from backtest.metrics import METRICS
from backtest.strategies import STRATEGIES
from backtest.views import _execution_help, _service_errors_to_form, _strategy_schemas
from backtest.walkforward import COMPARED_METRICS, RULES
from core.permissions import found_or_404
from core.services import job_cancel


@login_required
def walkforward_list(request):
    return render(request, "backtest/walkforward_list.html",
                  {"walkforwards": selectors.walkforward_list(user=request.user)[:200]})


@login_required
def walkforward_new(request):
    initial = {"strategy": request.GET["strategy"]} if request.GET.get("strategy") in STRATEGIES else {}
    form = WalkForwardForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        data["seed"] = data.get("seed") or 0
        try:
            walkforward = walkforward_services.walkforward_create(owner=request.user, **data)
        except ValidationError as exc:
            _service_errors_to_form(form, exc)
        else:
            return redirect("backtest:walkforward_detail", pk=walkforward.pk)
    return render(request, "backtest/walkforward_new.html", {
        "form": form, "schemas": _strategy_schemas(), "rules": RULES, **_execution_help()})


@login_required
def walkforward_detail(request, pk: int):
    walkforward = found_or_404(selectors.walkforward_get_for_viewer(user=request.user, pk=pk))
    context = {"wf": walkforward, "rules": RULES, "semantics": SEMANTICS,
               "ws_path": WalkForwardStream.path(walkforward.pk),
               "compared": [(k, METRICS[k][0]) for k in COMPARED_METRICS]}
    if walkforward.is_finished:
        context.update(selectors.walkforward_report(walkforward=walkforward))
    return render(request, "backtest/walkforward_detail.html", context)


@login_required
@require_POST
def walkforward_cancel(request, pk: int):
    walkforward = found_or_404(selectors.walkforward_get_for_viewer(user=request.user, pk=pk))
    if not walkforward.is_finished:
        job_cancel(job=walkforward, by=request.user)
        messages.info(request, "Cancelling the walk-forward…")
    return redirect("backtest:walkforward_detail", pk=walkforward.pk)
