"""Small helpers for the tests (fixtures live in the root conftest.py); not part of the platform."""

import socket
import time

PASSWORD = "correct-Horse-9"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, *, timeout: float = 10.0, interval: float = 0.05, message: str = "condition"):
    """Poll `predicate` until it returns a truthy value (returned) or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def clear_own_cache(cache, config: dict) -> None:
    """Clear the cache keys of this deployment (or test run) only.

    On Redis, `cache.clear()` is FLUSHDB: it would also wipe the task queue, the channel-layer
    messages and the cache of everyone else sharing the server (e.g. the other test process).
    """
    prefix = config.get("KEY_PREFIX")
    if not prefix or "redis" not in config["BACKEND"].lower():
        cache.clear()
        return
    client = cache._cache.get_client(write=True)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


def api_token(user, name: str = "test") -> str:
    """A new API token of `user`, made by the service the product uses; returns its key."""
    from accounts.services import token_create

    return token_create(user=user, name=name)[1]


def token_header(key: str) -> dict[str, str]:
    """How programs send a token, over HTTP and websockets alike (never in the URL)."""
    return {"Authorization": f"Token {key}"}


def token_ws_headers(key: str) -> list[tuple[bytes, bytes]]:
    """The same header for Channels' WebsocketCommunicator."""
    return [(b"authorization", f"Token {key}".encode())]


def token_subprotocols(key: str) -> list[str]:
    """The other websocket way (clients that cannot set headers): the server answers `platform.v1`."""
    return ["platform.v1", f"token.{key}"]
