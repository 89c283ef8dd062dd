"""What the server knows live: the worker's events in order, numbered, for every page that listens.

The worker's queue is read by one thread (:meth:`Hub.pump`); each event gets the next number and is kept in a
bounded window, and each page's event stream sends what is newer than the last number it saw.  A page that
reconnects says which number that was (``Last-Event-ID``) and misses nothing still in the window; one that fell
further behind gets a ``resync`` and reloads the lists.  The latest step of each job is kept too, for the queue
list's progress bars.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

__all__ = ["WINDOW", "Hub"]

#: Events kept for pages that reconnect.
WINDOW = 5000


class Hub:
    """Numbered events and each job's latest step (see the module); thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seq = 0
        self.window: deque[tuple[int, dict[str, Any]]] = deque(maxlen=WINDOW)
        self.latest: dict[str, dict[str, Any]] = {}
        self.worker_state = "starting"

    def publish(self, event: dict[str, Any]) -> int:
        with self.lock:
            self.seq += 1
            if event.get("type") == "step":
                self.latest[event["key"]] = event
            elif event.get("type") == "worker":
                self.worker_state = str(event["state"])
            self.window.append((self.seq, event))
            return self.seq

    def since(self, seq: int) -> tuple[list[tuple[int, dict[str, Any]]], bool]:
        """The events after ``seq``, and whether some were already dropped from the window."""
        with self.lock:
            if not self.window or seq >= self.seq:
                return [], False
            first = self.window[0][0]
            return [item for item in self.window if item[0] > seq], seq < first - 1

    def forget(self, key: str) -> None:
        with self.lock:
            self.latest.pop(key, None)
