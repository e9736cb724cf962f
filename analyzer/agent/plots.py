"""Vega-Lite specs from the model: cleaned so they load nothing, then validated against the Vega-Lite JSON schema
(via altair) before they are stored and sent.

A chart's only data are the rows the server attached (its query's result). `spec_clean` removes, at every
depth, whatever could make Vega fetch or open something: `url` (data, image marks and channels, lookup
sources), `href` (mark property and channel), `usermeta` (vega-embed reads `embedOptions` from it, loader
options included), `datasets`, `loader`, and every `data` but the top-level one; a lookup transform left
without a source is dropped. The browser's vega-embed also gets a loader that refuses every request
(static/analyzer/analyzer.js).
"""

from __future__ import annotations

import functools
import json

import altair as alt
import jsonschema

from analyzer import conf

SCHEMA_URL = alt.SCHEMA_URL


class PlotInvalid(Exception):
    pass


# Keys removed wherever they appear in a spec: each can name something to load or open.
REMOVED_KEYS = frozenset({"url", "href", "usermeta", "datasets", "loader", "$schema"})


def _clean(node):
    """`node` without REMOVED_KEYS and `data` at any depth (the top-level data is attached afterwards)."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in REMOVED_KEYS or key == "data":
                continue
            out[key] = _clean(value)
        if "lookup" in out and isinstance(out.get("from"), dict) and "param" not in out["from"]:
            return None  # a lookup that read another data source: nothing is left to look up in
        return out
    if isinstance(node, list):
        items = [_clean(item) for item in node]
        return [item for item in items if item is not None]
    return node


def spec_clean(spec: dict, *, rows: list[dict] | None = None) -> dict:
    """The spec without anything that can load or open (see the module docstring); `rows` become its data.

    Without `rows` the spec keeps the inline rows of its own top-level `data.values` (nothing else of
    `data`), so a stored spec can be cleaned again."""
    if not isinstance(spec, dict):
        raise PlotInvalid("vega_lite_spec must be a JSON object.")
    if rows is None:
        data = spec.get("data")
        values = data.get("values") if isinstance(data, dict) else None
        rows = values if isinstance(values, list) else []
    cleaned = _clean(spec) or {}
    cleaned["data"] = {"values": rows}
    return cleaned


@functools.lru_cache(maxsize=1)
def _schema() -> dict:
    from altair.vegalite import v6

    return v6.schema.load_schema()


@functools.lru_cache(maxsize=1)
def _validator():
    """One validator for the whole process: altair's validate_jsonschema copies the schema on every call
    (about 0.15 s a chart), this one checks a chart in about a millisecond."""
    schema = _schema()
    return jsonschema.validators.validator_for(schema)(schema)


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
    if len(json.dumps(spec, default=str)) > conf.PLOT_SPEC_MAX_BYTES:
        raise PlotInvalid(f"The Vega-Lite spec is too large (over {conf.PLOT_SPEC_MAX_BYTES:,} bytes); keep it short, "
                          "the data come from the query.")
    full = spec_clean(spec, rows=[])
    del full["data"]
    full["$schema"] = SCHEMA_URL
    if title and "title" not in full:
        full["title"] = title
    # Validate the spec itself; the rows (up to thousands) are plain data added afterwards.
    full["data"] = {"values": rows[:1]}
    error = jsonschema.exceptions.best_match(_validator().iter_errors(full))
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
