"""A sweep's parameter sets: a grid of values (or a random sample of it) checked by the strategy's rules."""

from __future__ import annotations

import math
import random
from typing import Any

from django.core.exceptions import ValidationError

from backtest import conf
from backtest.strategies import Strategy, param_value_clean


def grid_axis_clean(strategy: Strategy, name: str, spec: Any) -> list:
    if isinstance(spec, dict):
        try:
            lo, hi, step = (float(spec[k]) for k in ("start", "stop", "step"))
        except (KeyError, TypeError, ValueError):
            raise ValueError("A range needs numeric start, stop and step.") from None
        if not all(math.isfinite(v) for v in (lo, hi, step)) or step <= 0 or hi < lo:
            raise ValueError("A range needs finite numbers, step > 0 and stop >= start.")
        count = (hi - lo) / step + 1
        if not math.isfinite(count) or count > 1000:
            raise ValueError("A range may hold at most 1000 values.")
        spec = [lo + i * step for i in range(int(count + 1e-9))]
    elif not isinstance(spec, list):
        spec = [spec]
    if not spec:
        raise ValueError("Give at least one value.")
    if len(spec) > 1000:
        raise ValueError("At most 1000 values per parameter.")
    values = []
    for raw in spec:
        value = param_value_clean(strategy, name, round(raw, 10) if isinstance(raw, float) else raw)
        if value not in values:
            values.append(value)
    return values


def grid_expand(*, strategy: Strategy, grid: dict, sample: int | None, seed: int) -> tuple[list[dict], int]:
    """The parameter sets of a grid (or a random sample of it) and how many grid points the rules dropped."""
    if not isinstance(grid, dict) or not grid:
        raise ValidationError({"grid": "Give at least one parameter with its values."})
    errors, axes = {}, {}
    for name, spec in grid.items():
        try:
            axes[name] = grid_axis_clean(strategy, name, spec)
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        raise ValidationError({"grid": [f"{k}: {v}" for k, v in errors.items()]})
    size = 1
    for values in axes.values():
        size *= len(values)
    limit = conf.SWEEP_MAX_COMBOS
    if size > 10_000_000:
        raise ValidationError({"grid": f"The grid has {size:,} points; at most 10,000,000 can be sampled."})
    if size > limit and not sample:
        raise ValidationError({"grid": f"The grid has {size:,} parameter sets; the limit is {limit:,}. "
                                       "Narrow it or set a random sample size."})
    if sample is not None and not (1 <= sample <= limit):
        raise ValidationError({"sample": f"The sample size must be between 1 and {limit:,}."})
    defaults = strategy.defaults()
    names = list(axes)

    def point(index: int) -> dict:
        """The grid point with this index (mixed radix over the axes; the last axis varies fastest)."""
        chosen = {}
        for name in reversed(names):
            index, digit = divmod(index, len(axes[name]))
            chosen[name] = axes[name][digit]
        return {**defaults, **{name: chosen[name] for name in names}}

    if sample and sample < size:
        # Random grid points, drawn without building the grid; extra draws cover points the rules drop.
        candidates = random.Random(seed).sample(range(size), min(size, max(4 * sample, sample + 1000)))
    else:
        sample, candidates = None, range(size)
    valid, dropped = [], 0
    for index in candidates:
        params = point(index)
        if strategy.rule_errors(params):
            dropped += 1
            continue
        valid.append(params)
        if sample and len(valid) == sample:
            break
    if not valid:
        raise ValidationError({"grid": "No parameter set in this grid satisfies the strategy's rules "
                                       "(e.g. fast < slow)."})
    return valid, dropped
