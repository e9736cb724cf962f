"""One visibility rule per model, whatever the route: the page, the API and the websocket of the same
object answer the same viewers (each model's `<entity>_get_for_viewer` selector), and refuse the same.

For every streamed model: its owner, another user, another admin and an anonymous client try the
object's page, its API detail and its websocket. The websocket of an object nobody else may see
closes 4404 like the page and the API answer 404 (no existence leak).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from config.asgi import application
from tests.support import api_token, token_ws_headers

pytestmark = pytest.mark.django_db(transaction=True)

OWNER_AND_STAFF, TEAM, OWNER_ONLY = "owner and staff", "every signed-in user", "owner only"


@dataclass
class Case:
    build: str  # name of the builder below: owner → (object, page path or None, API path or None)
    ws: str  # websocket path, `{pk}` filled with the object's id
    rule: str
    owner_is_admin: bool = False


def _export(owner):
    from trades.loading import trades_generate
    from trades.models import Exchange
    from trades.params import ExportParams
    from trades.services import export_request

    trades_generate(tickers=1, days=1, rows=50, seed=3)
    exchange = Exchange.objects.order_by("pk").values_list("pk", flat=True).first()
    export = export_request(user=owner, params=ExportParams(exchanges=(exchange,))).export
    return export, f"/trades/exports/{export.pk}/", f"/api/trades/exports/{export.pk}/"


def _script_run(owner):
    from scripts_runner import services

    services.script_access_set(user=owner, run=True)
    script = services.script_create(owner=owner, name="s.py", code=b"print(1)\n")
    run = services.script_run_create(script=script, user=owner)
    return run, f"/scripts/runs/{run.pk}/", f"/api/runs/{run.pk}/"


def _branch():
    from etl.models import Branch, FileSource

    source = FileSource.objects.create(name="s", kind=FileSource.Kind.DIRECTORY, root_path="/nonexistent")
    return Branch.objects.create(code="B", name="B", source=source)


def _fetch_job(owner):
    from etl import services

    job, _ = services.fetch_job_request(user=owner, branch=_branch(), pos=1, work_date=date(2025, 1, 2))
    return job, f"/etl/jobs/{job.pk}/", f"/api/etl/jobs/{job.pk}/"


def _record_export(owner):
    from etl import services

    export = services.record_export_create(user=owner, filters={})
    return export, f"/etl/exports/{export.pk}/", f"/api/etl/exports/{export.pk}/"


def _session(owner):
    from analyzer.tests.conftest import SAMPLE_CSV, create_session

    session = create_session(owner, "t.csv", SAMPLE_CSV)
    return session, f"/analyzer/sessions/{session.pk}/", f"/api/analyzer/sessions/{session.pk}/"


def _processing(owner):
    # The processing job has no page of its own: it is shown on its session's page and API.
    session, page, api = _session(owner)
    return session.processing, page, api


def _answer(owner):
    from analyzer import services

    session, page, api = _session(owner)
    return services.answer_request(session=session, user=owner, text="How many rows?"), page, api


def _instrument():
    from backtest import market_services

    instrument = market_services.instrument_create(symbol="BTCUSDT", kind="crypto", exchange="BINANCE")
    market_services.bars_generate(instrument=instrument, interval="1h", bars=200, start="2024-01-01", seed=1,
                                  start_price=40_000)
    return instrument


def _backtest_run(owner):
    from backtest import services

    run, _ = services.backtest_run_create(owner=owner, instrument=_instrument(), interval="1h", strategy="buy_hold")
    return run, f"/backtest/runs/{run.pk}/", f"/api/backtest/runs/{run.pk}/"


def _sweep(owner):
    from backtest import services

    sweep = services.sweep_create(owner=owner, instruments=[_instrument()], interval="1h", strategy="sma_cross",
                                  grid={"fast": [5]})
    return sweep, f"/backtest/sweeps/{sweep.pk}/", f"/api/backtest/sweeps/{sweep.pk}/"


def _bar_import(owner):
    from backtest import market_services

    upload = SimpleUploadedFile("bars.csv", b"time,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,1.5,10\n")
    job = market_services.bars_import_create(owner=owner, instrument=_instrument(), interval="1h", upload=upload)
    return job, f"/backtest/imports/{job.pk}/", f"/api/market/imports/{job.pk}/"


def _portfolio(owner):
    from backtest import market_services, portfolio_services

    other = market_services.instrument_create(symbol="ETHUSDT", kind="crypto", exchange="BINANCE")
    market_services.bars_generate(instrument=other, interval="1h", bars=200, start="2024-01-01", seed=2)
    portfolio = portfolio_services.portfolio_create(owner=owner, instruments=[_instrument(), other], interval="1h",
                                                    mode="rebalance")
    return portfolio, f"/backtest/portfolios/{portfolio.pk}/", f"/api/backtest/portfolios/{portfolio.pk}/"


def _worker_check(owner):
    from core import services

    return services.worker_check_create(user=owner), None, None


CASES = {
    "trades.export": Case("_export", "/ws/trades/exports/{pk}/", OWNER_AND_STAFF),
    "scripts_runner.scriptrun": Case("_script_run", "/ws/scripts/runs/{pk}/", OWNER_AND_STAFF),
    "etl.fetchjob": Case("_fetch_job", "/ws/etl/jobs/{pk}/", TEAM),
    "etl.recordexport": Case("_record_export", "/ws/etl/exports/{pk}/", OWNER_AND_STAFF),
    "analyzer.analysissession": Case("_session", "/ws/analyzer/sessions/{pk}/", OWNER_ONLY),
    "analyzer.processing": Case("_processing", "/ws/analyzer/processings/{pk}/", OWNER_ONLY),
    "analyzer.answer": Case("_answer", "/ws/analyzer/answers/{pk}/", OWNER_ONLY),
    "backtest.backtestrun": Case("_backtest_run", "/ws/backtest/runs/{pk}/", OWNER_AND_STAFF),
    "backtest.sweep": Case("_sweep", "/ws/backtest/sweeps/{pk}/", OWNER_AND_STAFF),
    "backtest.portfolio": Case("_portfolio", "/ws/backtest/portfolios/{pk}/", OWNER_AND_STAFF),
    "backtest.barimport": Case("_bar_import", "/ws/backtest/imports/{pk}/", OWNER_AND_STAFF, owner_is_admin=True),
    "core.workercheck": Case("_worker_check", "/ws/core/worker-checks/{pk}/", OWNER_AND_STAFF, owner_is_admin=True),
}

EXPECTED = {  # rule → who may see: (owner, another user, another admin)
    OWNER_AND_STAFF: (True, False, True),
    TEAM: (True, True, True),
    OWNER_ONLY: (True, False, False),
}


def _ws_outcome(path: str, user) -> tuple[bool, int | None]:
    headers = token_ws_headers(api_token(user)) if user is not None else []

    async def attempt():
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, code = await communicator.connect(timeout=5)
        if connected:
            await communicator.disconnect()
        return connected, code

    return async_to_sync(attempt)()


def _page_status(path: str, user) -> int:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client.get(path).status_code


def _api_status(path: str, user) -> int:
    from rest_framework.test import APIClient

    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {api_token(user)}")
    return client.get(path).status_code


@pytest.mark.parametrize("label", list(CASES))
def test_page_api_and_websocket_agree_on_who_sees_an_object(label, make_user):
    case = CASES[label]
    owner = make_user("owner", is_admin=case.owner_is_admin)
    viewers = (owner, make_user("someone"), make_user("staffer", is_admin=True))
    obj, page, api = globals()[case.build](owner)
    assert obj._meta.label_lower == label
    ws = case.ws.format(pk=obj.pk)
    for viewer, may_see in zip(viewers, EXPECTED[case.rule], strict=True):
        connected, code = _ws_outcome(ws, viewer)
        assert (connected, code) == ((True, None) if may_see else (False, 4404)), (label, viewer.username, "ws")
        if page is not None:
            assert _page_status(page, viewer) == (200 if may_see else 404), (label, viewer.username, "page")
        if api is not None:
            assert _api_status(api, viewer) == (200 if may_see else 404), (label, viewer.username, "api")
    # Nobody signed in: the websocket closes 4401, the page sends to the login, the API refuses.
    assert _ws_outcome(ws, None) == (False, 4401)
    if page is not None:
        response = Client().get(page)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    if api is not None:
        assert _api_status(api, None) in (401, 403)
    # An id that does not exist is the same answer as one the viewer may not see.
    assert _ws_outcome(case.ws.format(pk=obj.pk + 10_000), owner) == (False, 4404)


def test_a_team_member_watches_a_fetch_job_everywhere_but_cancels_it_nowhere(make_user):
    """ETL jobs are the team's: another user sees the job on every route, and is refused its cancel on
    every route (the page's form, the API, the websocket); the job stays queued."""
    from etl.models import FetchJob

    owner, other = make_user("owner"), make_user("someone")
    job, page, api = _fetch_job(owner)
    client = Client()
    client.force_login(other)
    client.post(f"/etl/jobs/{job.pk}/cancel/")
    from rest_framework.test import APIClient

    api_client = APIClient()
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {api_token(other)}")
    assert api_client.post(f"/api/etl/jobs/{job.pk}/cancel/").status_code == 403

    async def cancel_over_the_socket():
        communicator = WebsocketCommunicator(application, f"/ws/etl/jobs/{job.pk}/",
                                             headers=token_ws_headers(api_token(other)))
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        assert (await communicator.receive_json_from(timeout=5))["type"] == "status"
        await communicator.send_json_to({"type": "cancel"})
        refusal = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return refusal

    refusal = async_to_sync(cancel_over_the_socket)()
    assert refusal == {"type": "error", "error": "Only the job's owner or an administrator can cancel it."}
    job = FetchJob.objects.get(pk=job.pk)
    assert (job.status, job.cancel_requested) == ("queued", False)
