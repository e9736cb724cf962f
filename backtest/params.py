"""Parameter schemas and their coercion, and the execution parameters every strategy's run has."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from backtest.fills import ENTRY_MODES, SIZINGS, STOP_UNITS


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # "int" | "float" | "bool" | "choice"
    default: Any
    min: float | None = None
    max: float | None = None
    description: str = ""
    choices: tuple[str, ...] = ()

    def as_schema(self) -> dict:
        data = {"name": self.name, "type": self.type, "default": self.default, "description": self.description}
        if self.type == "choice":
            data["choices"] = list(self.choices)
        elif self.type != "bool":
            data["min"], data["max"] = self.min, self.max
        return data


class ParamError(ValueError):
    """Invalid strategy parameters: `errors` maps a parameter name to its message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def param_coerce(param: Param, value: Any) -> Any:
    if param.type == "choice":
        if not isinstance(value, str) or value not in param.choices:
            raise ValueError(f"Choose one of {', '.join(param.choices)}.")
        return value
    if param.type == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "on", "off", "yes", "no"):
            return value.lower() in ("true", "1", "on", "yes")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError("Must be true or false.")
    if isinstance(value, bool):
        raise ValueError(f"Must be a number ({param.type}).")
    if param.type == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise ValueError("Must be a whole number.") from None
        if not isinstance(value, int):
            raise ValueError("Must be a whole number.")
    else:
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError("Must be a number.") from None
        if not np.isfinite(value):
            raise ValueError("Must be a finite number.")
    if param.min is not None and value < param.min:
        raise ValueError(f"Must be at least {param.min:g}.")
    if param.max is not None and value > param.max:
        raise ValueError(f"Must be at most {param.max:g}.")
    return value


ENTRY_PARAM = Param(
    "entry", "choice", "state", choices=ENTRY_MODES,
    description="state: hold the position while the signal says so. cross: take a position only where the "
                "signal changes (as backtesting.py's crossover()); the first position at the first change.",
)
#: How any strategy's run trades: stops, targets, sizing, the end of the data (see backtest.fills).
EXECUTION_PARAMS = (
    Param("stop_loss", "float", 0.0, 0, 1000, "Stop-loss distance from the entry price (0 = none)."),
    Param("take_profit", "float", 0.0, 0, 1000, "Take-profit distance from the entry price (0 = none)."),
    Param("trailing_stop", "float", 0.0, 0, 1000,
          "Trailing-stop distance from the best close since entry (0 = none)."),
    Param("stop_unit", "choice", "pct", description="The distances above: pct = percent of the price, "
          "atr = multiples of the average true range at the decision.", choices=STOP_UNITS),
    Param("atr_period", "int", 14, 1, 500, "ATR period (Wilder smoothing), for stop_unit atr."),
    Param("sizing", "choice", "equity", description="equity: size is the fraction of equity put in each "
          "entry (0 < size <= 1). units: size is a fixed number of units (whole units for stocks).",
          choices=SIZINGS),
    Param("size", "float", 1.0, 0, 1e9, "Fraction of equity, or number of units (see sizing)."),
    Param("finalize_trades", "bool", False,
          description="Close a trade still open at the end at the last close and count it."),
)
EXECUTION_DEFAULTS = {p.name: p.default for p in (ENTRY_PARAM, *EXECUTION_PARAMS)}


def execution_check(params: dict) -> dict[str, str]:
    """Rules between the execution parameters (only those the strategy has)."""
    errors = {}
    if params.get("sizing") == "equity" and not 0 < params.get("size", 1.0) <= 1:
        errors["size"] = "With sizing by equity, size is a fraction: more than 0, at most 1."
    if params.get("sizing") == "units" and not params.get("size", 1.0) > 0:
        errors["size"] = "With sizing by units, size must be more than 0."
    if params.get("stop_unit") == "pct":
        for name in ("stop_loss", "trailing_stop"):
            if params.get(name, 0) >= 100:
                errors[name] = "A stop distance in percent must be below 100."
    return errors
