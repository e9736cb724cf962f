"""Each strategy's page explains its rules in words, from its own parameter definitions."""

import html

import pytest

from backtest.strategies import STRATEGIES
from backtest.strategy_words import RULE_WORDS, SHORT_WORDS, strategy_words


def test_every_strategy_has_its_rules_in_words():
    assert set(RULE_WORDS) == set(STRATEGIES) == set(SHORT_WORDS)
    for strategy in STRATEGIES.values():
        words = strategy_words(strategy)
        assert words.entry and words.exit and "{" not in words.entry + words.exit
        assert [p["name"] for p in words.params] == [p.name for p in strategy.params]
        assert [p["name"] for p in words.execution_params] == [p.name for p in strategy.execution_params]
        assert bool(words.short) == strategy.supports_short


def test_words_are_filled_from_the_parameter_definitions():
    words = strategy_words(STRATEGIES["sma_cross"])
    assert words.entry == ("Be long while the simple moving average of the last fast (default 10) closes is above "
                           "the one of the last slow (default 30) closes.")
    assert words.params[0] == {"name": "fast", "meaning": "Fast SMA period (bars).", "type": "int", "default": "10",
                               "range": "2 to 500 (whole numbers)"}
    assert "allow_short (default off)" in words.short
    assert any("entry (default state)" in line for line in words.execution)
    assert any("stop_loss (default 0)" in line and "stop_unit (default pct)" in line for line in words.execution)
    assert any("sizing (default equity)" in line and "size (default 1)" in line for line in words.execution)
    # buy & hold has no signal entries and no short side
    hold = strategy_words(STRATEGIES["buy_hold"])
    assert not any(line.startswith("Entries:") for line in hold.execution) and hold.short == "" and hold.params == []


@pytest.mark.django_db
@pytest.mark.parametrize("key", list(STRATEGIES))
def test_strategy_page_shows_every_parameter_its_meaning_and_default(key, user, client):
    client.force_login(user)
    response = client.get(f"/backtest/strategies/{key}/")
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    strategy = STRATEGIES[key]
    words = strategy_words(strategy)
    assert words.entry in page and words.exit in page
    for param in strategy.all_params:
        assert f"<code>{param.name}</code>" in page and param.description in page, param.name
    for row in words.params + words.execution_params:
        assert f"<td><code>{row['default']}</code></td><td>{row['range']}</td>" in page, row


@pytest.mark.django_db
def test_strategy_list_links_each_page_and_unknown_is_404(user, client):
    client.force_login(user)
    page = client.get("/backtest/strategies/").content.decode()
    for key in STRATEGIES:
        assert f'href="/backtest/strategies/{key}/"' in page
    assert client.get("/backtest/strategies/nope/").status_code == 404
    client.logout()
    assert client.get("/backtest/strategies/sma_cross/").status_code == 302


@pytest.mark.django_db
@pytest.mark.parametrize("form", ["/backtest/runs/new/", "/backtest/sweeps/new/", "/backtest/walkforwards/new/"])
def test_run_forms_link_the_chosen_strategys_page(form, user, client, btc):
    client.force_login(user)
    page = client.get(form).content.decode()
    assert 'href="/backtest/strategies/sma_cross/" data-strategy-link data-base="/backtest/strategies/"' in page
    if "sweeps" not in form:  # the run and walk-forward forms take the strategy from the address
        assert 'href="/backtest/strategies/macd/"' in client.get(form + "?strategy=macd").content.decode()
