"""Vega-Lite specs the built-in analyst draws: bar for categories, line for time, point for two measures,
binned bar for a distribution."""

from __future__ import annotations

from analyzer.duck import quote_ident as qi


def bar_spec(x: str, y: str, *, sort: str | None = "-y", color: str | None = None, x_type: str = "nominal") -> dict:
    spec = {
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "x": {"field": x, "type": x_type, **({"sort": sort} if sort else {})},
            "y": {"field": y, "type": "quantitative"},
        },
    }
    if color:
        spec["encoding"]["color"] = {"field": color, "type": "nominal"}
        spec["encoding"]["xOffset"] = {"field": color}
    return spec


def line_spec(x: str, y: str, *, x_type: str = "temporal", color: str | None = None) -> dict:
    x_enc: dict = {"field": x, "type": x_type}
    if x_type == "quantitative":
        x_enc.update({"axis": {"format": "d"}, "scale": {"zero": False}})
    spec = {
        "mark": {"type": "line", "point": True, "tooltip": True},
        "encoding": {"x": x_enc, "y": {"field": y, "type": "quantitative"}},
    }
    if color:
        spec["encoding"]["color"] = {"field": color, "type": "nominal"}
    return spec


def point_spec(x: str, y: str, *, color: str | None = None) -> dict:
    spec = {
        "mark": {"type": "point", "tooltip": True, "opacity": 0.6},
        "encoding": {"x": {"field": x, "type": "quantitative", "scale": {"zero": False}},
                     "y": {"field": y, "type": "quantitative", "scale": {"zero": False}}},
    }
    if color:
        spec["encoding"]["color"] = {"field": color, "type": "nominal"}
    return spec


def histogram_sql(col: str, bins: int = 20, where: str = "") -> str:
    x = f"{qi(col)}::DOUBLE"
    cond = f"{qi(col)} IS NOT NULL" + (f" AND ({where})" if where else "")
    return (
        f"WITH s AS (SELECT min({x}) AS lo, max({x}) AS hi FROM data WHERE {cond}),\n"
        f"b AS (SELECT CASE WHEN s.hi = s.lo THEN 0 ELSE LEAST(floor(({x} - s.lo) / ((s.hi - s.lo) / {bins})), "
        f"{bins - 1}) END AS bucket, s.lo, s.hi FROM data, s WHERE {cond})\n"
        f"SELECT lo + bucket * (hi - lo) / {bins} AS bin_start, lo + (bucket + 1) * (hi - lo) / {bins} AS bin_end, "
        f"count(*) AS count FROM b GROUP BY bucket, lo, hi ORDER BY bucket"
    )


def histogram_spec(col: str) -> dict:
    return {
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "x": {"field": "bin_start", "type": "quantitative", "bin": {"binned": True}, "title": col},
            "x2": {"field": "bin_end"},
            "y": {"field": "count", "type": "quantitative", "title": "rows"},
        },
    }


def sample_sql(columns: list[str], where: str = "", rows: int = 2000) -> str:
    cols = ", ".join(qi(c) for c in columns)
    cond = " AND ".join(f"{qi(c)} IS NOT NULL" for c in columns[:2]) + (f" AND ({where})" if where else "")
    return (f"SELECT {cols} FROM (SELECT {cols} FROM data WHERE {cond}) "
            f"USING SAMPLE reservoir({rows} ROWS) REPEATABLE (42)")
