"""The worker listens to its run's channel-layer group, so a cancel rings at once.

The database flag stays the record (checked every `cancel_poll_seconds`); the
bell only makes the next check happen sooner. With the in-memory layer (which
cannot cross processes) there is nothing to listen to and the bell stays off.
"""

from __future__ import annotations

import asyncio
import logging
import threading

logger = logging.getLogger(__name__)


class RunDoorbell(threading.Thread):
    def __init__(self, group: str):
        super().__init__(daemon=True, name=f"doorbell-{group}")
        self.group = group
        self.rung = threading.Event()
        self._stop = threading.Event()

    @staticmethod
    def available() -> bool:
        from channels.layers import InMemoryChannelLayer, get_channel_layer

        layer = get_channel_layer()
        return layer is not None and not isinstance(layer, InMemoryChannelLayer)

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        try:
            asyncio.run(self._listen())
        except Exception:
            logger.warning("doorbell listener for %s stopped", self.group, exc_info=True)

    async def _listen(self) -> None:
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(self.group, channel)
        try:
            while not self._stop.is_set():
                try:
                    await asyncio.wait_for(layer.receive(channel), timeout=0.5)
                    self.rung.set()
                except asyncio.TimeoutError:
                    continue
                except Exception:  # e.g. a Redis read timeout: keep listening, the flag is polled anyway
                    await asyncio.sleep(0.2)
        finally:
            try:
                await layer.group_discard(self.group, channel)
            except Exception:
                pass
