"""Handler ``jsonl-file``: every event it receives appended to a JSON Lines file."""

import asyncio
import json
from pathlib import Path
from typing import Any

from pywats_events import BaseHandler, Event

__all__ = ["JsonlFileSink"]


class JsonlFileSink(BaseHandler):
    """Append each event as one JSON line to ``path`` (the write runs in a worker thread, off the loop).

    Args:
        path: the file to append to (created with its folder).
    """

    name = "jsonl-file"
    event_types = ("*",)

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_config(cls, name: str, options: dict[str, Any]) -> "JsonlFileSink":
        """Build from a ``[[handlers]]`` table: ``path = "out/events.jsonl"``."""
        sink = cls(**options)
        sink.name = name
        return sink

    async def handle(self, event: Event) -> None:
        line = json.dumps(event.to_json_dict(), default=str) + "\n"
        await asyncio.to_thread(self._append, line)

    def _append(self, line: str) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)
