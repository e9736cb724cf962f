"""Vega-Lite specs from the model: validated against the Vega-Lite JSON schema (via altair) before they are sent."""

from __future__ import annotations

import functools
import json

import altair as alt
from altair.utils.schemapi import validate_jsonschema

SCHEMA_URL = alt.SCHEMA_URL


class PlotInvalid(Exception):
    pass


@functools.lru_cache(maxsize=1)
def _schema() -> dict:
    from altair.vegalite import v6

    return v6.schema.load_schema()


def schema_warm() -> None:
    """Load the schema and run one validation (builds jsonschema's caches) ahead of the first answer."""
    plot_spec_build(spec={"mark": "point"}, rows=[{"x": 1}], columns=["x"], title="warm-up")


def _encoding_fields(spec: dict) -> list[str]:
    fields = []
    for key in ("encoding",):
        encoding = spec.get(key)
        if isinstance(encoding, dict):
            for channel in encoding.values():
                items = channel if isinstance(channel, list) else [channel]
                for item in items:
                    if isinstance(item, dict) and isinstance(item.get("field"), str):
                        fields.append(item["field"])
    for layer in spec.get("layer", []) or []:
        if isinstance(layer, dict) and not layer.get("transform"):
            fields += _encoding_fields(layer)
    return fields


def plot_spec_build(*, spec, rows: list[dict], columns: list[str], title: str) -> dict:
    """Inline the query rows as the chart's data and validate; PlotInvalid explains what is wrong."""
    if not isinstance(spec, dict):
        raise PlotInvalid("vega_lite_spec must be a JSON object.")
    full = {k: v for k, v in spec.items() if k not in ("data", "datasets", "$schema")}
    full["$schema"] = SCHEMA_URL
    if title and "title" not in full:
        full["title"] = title
    # Validate the spec itself; the rows (up to thousands) are plain data added afterwards.
    full["data"] = {"values": rows[:1]}
    error = validate_jsonschema(full, _schema(), raise_error=False)
    full["data"] = {"values": rows}
    if error is not None:
        path = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        got = json.dumps(error.instance, default=str)[:200]
        raise PlotInvalid(f"The Vega-Lite spec is invalid at {path}: value {got} is not allowed "
                          f"({str(error.message)[:300]})")
    if not full.get("transform"):
        known = set(columns)
        missing = sorted({f for f in _encoding_fields(full) if f.split(".")[0] not in known})
        if missing:
            raise PlotInvalid(
                f"The spec uses field(s) {', '.join(missing)} that are not columns of the query result "
                f"({', '.join(columns)})."
            )
    return full
