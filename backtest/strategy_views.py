"""Strategy pages: each strategy's rules in plain words (backtest.strategy_words), linked from the forms."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from backtest.strategies import STRATEGIES
from backtest.strategy_words import strategy_words, strategy_words_all


@login_required
def strategy_list(request):
    return render(request, "backtest/strategy_list.html", {"strategies": strategy_words_all()})


@login_required
def strategy_detail(request, key: str):
    strategy = STRATEGIES.get(key)
    if strategy is None:
        raise Http404("Unknown strategy.")
    return render(request, "backtest/strategy_detail.html", {"s": strategy_words(strategy)})
