"""A strategy's rules in plain words, written from its own parameter definitions.

Each registered strategy names its entry and exit rule once here, as sentences with `{param}` slots; the
slots are filled from the strategy's `Param` definitions (name and default), and everything else — what
each parameter means, its type, default and range, going short, stops, targets, trailing stops, sizing
and the end of the data — is generated from the parameters the strategy and every run have
(`Strategy.params`, `Strategy.execution_params`). A strategy registered without words here fails
`test_every_strategy_has_its_rules_in_words`.
"""

from __future__ import annotations

from dataclasses import dataclass

from backtest.params import Param
from backtest.strategies import STRATEGIES, Strategy

# Per strategy: (the long entry, the long exit, the rule between parameters or "").
RULE_WORDS: dict[str, tuple[str, str, str]] = {
    "buy_hold": (
        "Buy on the first bar and hold.",
        "Never sells on a signal: the position is held to the end unless a stop, target or trailing stop closes it.",
        "",
    ),
    "sma_cross": (
        "Be long while the simple moving average of the last {fast} closes is above the one of the last {slow} closes.",
        "Leave when the fast average is no longer above the slow one.",
        "The fast period must be shorter than the slow period.",
    ),
    "ema_cross": (
        "Be long while the exponential moving average of span {fast} is above the one of span {slow}.",
        "Leave when the fast average is no longer above the slow one.",
        "The fast span must be shorter than the slow span.",
    ),
    "rsi_reversion": (
        "Buy when Wilder's RSI over {period} bars falls below {lower} (oversold).",
        "Sell when the RSI rises above {upper} (overbought).",
        "The lower threshold must be below the upper threshold.",
    ),
    "bollinger": (
        "Buy a close below the lower band: the {period}-bar moving average minus {std} standard deviations.",
        "Sell at a close back at or above the middle band (the moving average).",
        "",
    ),
    "macd": (
        "Be long while the MACD line (EMA of span {fast} minus EMA of span {slow}) is above its signal line, "
        "an EMA of span {signal} of the MACD line.",
        "Leave when the MACD line is no longer above the signal line.",
        "The fast span must be shorter than the slow span.",
    ),
    "donchian": (
        "Buy a close above the highest high of the previous {entry_period} bars.",
        "Sell a close below the lowest low of the previous {exit_period} bars.",
        "The exit period must not exceed the entry period.",
    ),
}

SHORT_WORDS = {
    "buy_hold": "",
    "sma_cross": "short while the fast average is below the slow one",
    "ema_cross": "short while the fast average is below the slow one",
    "rsi_reversion": "short from a rise above the upper threshold until a fall below the lower one",
    "bollinger": "short a close above the upper band, cover at the middle band",
    "macd": "short while the MACD line is below its signal line",
    "donchian": "short a close below the lowest low of the previous N bars, cover above the highest high of the "
                "previous M bars",
}


def _value(param: Param, value) -> str:
    if param.type == "bool":
        return "on" if value else "off"
    if isinstance(value, float) and value.is_integer():
        return f"{value:g}"
    return str(value)


def param_range(param: Param) -> str:
    if param.type == "choice":
        return " | ".join(param.choices)
    if param.type == "bool":
        return "true | false"
    return f"{param.min:g} to {param.max:g}" + (" (whole numbers)" if param.type == "int" else "")


def _slot(param: Param) -> str:
    return f"{param.name} (default {_value(param, param.default)})"


@dataclass(frozen=True)
class StrategyWords:
    key: str
    name: str
    summary: str
    entry: str
    exit: str
    short: str
    constraint: str
    execution: list[str]
    params: list[dict]
    execution_params: list[dict]


def _execution_sentences(strategy: Strategy) -> list[str]:
    """How every run of the strategy trades, from the execution parameters' own defaults."""
    p = {param.name: param for param in strategy.execution_params}
    out = ["Decisions are taken on each bar's close and filled at the next bar's open."]
    if "entry" in p:
        out.append(f"Entries: {_slot(p['entry'])}. {p['entry'].description}")
    out.append(
        f"Stops: a stop-loss {_slot(p['stop_loss'])}, a take-profit {_slot(p['take_profit'])} and a trailing stop "
        f"{_slot(p['trailing_stop'])}; 0 means none. Their distances are in {_slot(p['stop_unit'])}: "
        f"{p['stop_unit'].description.split(': ', 1)[-1]} The ATR period is {_slot(p['atr_period'])}.")
    out.append("A stop or target rests from the entry bar on and fills at its level (at the open when a bar opens "
               "beyond it); when both lie inside one bar the stop fills first. After such an exit the position is "
               "re-entered only on the next change of signal.")
    out.append(f"Sizing: {_slot(p['sizing'])} with {_slot(p['size'])}. {p['sizing'].description} "
               "Stocks trade in whole units, crypto in fractions.")
    out.append(f"End of the data: {_slot(p['finalize_trades'])}. {p['finalize_trades'].description} Otherwise a "
               "trade still open is valued in equity but not counted among the trades.")
    return out


def _param_rows(params) -> list[dict]:
    return [{"name": param.name, "meaning": param.description, "type": param.type,
             "default": _value(param, param.default), "range": param_range(param)} for param in params]


def strategy_words(strategy: Strategy) -> StrategyWords:
    """The rules of `strategy` in words (KeyError when it has no entry in RULE_WORDS)."""
    entry, exit_, constraint = RULE_WORDS[strategy.key]
    slots = {param.name: _slot(param) for param in strategy.params}
    short = ""
    if strategy.supports_short:
        allow = next(param for param in strategy.params if param.name == "allow_short")
        short = (f"With {_slot(allow)} on, it goes {SHORT_WORDS[strategy.key]} instead of staying flat; "
                 "a change of side closes the trade and opens the opposite one at the same open.")
    return StrategyWords(
        key=strategy.key, name=strategy.name, summary=strategy.description, entry=entry.format(**slots),
        exit=exit_.format(**slots), short=short, constraint=constraint, execution=_execution_sentences(strategy),
        params=_param_rows(strategy.params), execution_params=_param_rows(strategy.execution_params),
    )


def strategy_words_all() -> list[StrategyWords]:
    return [strategy_words(s) for s in STRATEGIES.values()]
