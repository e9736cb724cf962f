"""The health probe: database, channel layer round trip and worker heartbeats."""

import asyncio
import time

import pytest
from channels.layers import InMemoryChannelLayer

from core import selectors


@pytest.mark.django_db
def test_health_round_trips_the_configured_channel_layer(settings):
    body = selectors.health_status()
    assert body["database"]["ok"] is True
    assert body["channel_layer"] == {
        "ok": True,
        "backend": settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1],
    }
    # No worker has beaten in this test, so the whole status is not ok.
    assert body["worker"]["ok"] is False and body["ok"] is False


@pytest.mark.django_db
def test_repeated_probes_do_not_disturb_each_other():
    """Each probe runs on its own event loop and layer instance; none may hang or fail."""
    results = [selectors.health_status()["channel_layer"]["ok"] for _ in range(10)]
    assert results == [True] * 10


class SilentLayer(InMemoryChannelLayer):
    async def receive(self, channel):
        await asyncio.sleep(3600)


@pytest.mark.django_db
def test_a_layer_that_never_answers_is_reported_down_not_hung(monkeypatch, admin_user, client):
    monkeypatch.setattr(selectors, "LAYER_TIMEOUT", 0.3)
    monkeypatch.setattr(selectors.channel_layers, "make_backend", lambda name: SilentLayer())
    client.force_login(admin_user)
    started = time.monotonic()
    response = client.get("/api/health/")
    assert time.monotonic() - started < 5
    assert response.status_code == 503
    layer = response.json()["channel_layer"]
    assert layer["ok"] is False and layer["error"] == "no reply within 0.3 s"
