"""The stream base's hostile input: a bad `?after=`, frames that are not JSON, a cancel refused by the service."""

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from config.asgi import application
from core import services
from core.streams import after_param
from tests.support import api_token, token_ws_headers

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("query, after", [
    (b"", 0), (b"after=7", 7), (b"after=abc", 0), (b"after=-3", 0), (b"after=1e9", 0),
    (b"after=" + b"9" * 40, 0), (b"after=%FF", 0), (b"after=4&after=9", 4), (b"x=1&" * 60 + b"after=5", 0),
])
def test_after_is_a_sequence_number_or_zero(query, after):
    assert after_param({"query_string": query}) == after


def test_a_job_stream_answers_bad_frames_with_an_error_and_stays_open(make_user):
    owner = make_user("owner", is_admin=True)
    job = services.worker_check_create(user=owner)
    services.job_events_add(job=job, events=[("step", {"n": 1}), ("step", {"n": 2})])
    key = api_token(owner)

    async def scenario():
        communicator = WebsocketCommunicator(application, f"/ws/core/worker-checks/{job.pk}/?after=abc",
                                             headers=token_ws_headers(key))
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        first = [await communicator.receive_json_from(timeout=5) for _ in range(3)]
        await communicator.send_to(text_data="not json {")
        refusal = await communicator.receive_json_from(timeout=5)
        await communicator.send_json_to(["cancel"])  # JSON, but not a message: ignored
        await communicator.send_json_to({"type": "cancel"})
        after_cancel = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return first, refusal, after_cancel

    first, refusal, after_cancel = async_to_sync(scenario)()
    # A bad `after` replays from the start: both events, then the status.
    assert [m.get("seq") for m in first] == [1, 2, None] and first[2]["type"] == "status"
    assert refusal == {"type": "error", "error": "Messages must be JSON objects."}
    # The socket still works: the owner's cancel ends the queued check.
    assert after_cancel["type"] == "status" and after_cancel["job"]["status"] == "cancelled"
