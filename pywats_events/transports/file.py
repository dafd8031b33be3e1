"""``FileTransport``: a drop folder watched with watchfiles, for testers that write result files.

Each file matching the patterns is read once it has stopped changing, decoded (CFX envelopes or
normalized event JSON, raw or gzip), routed, and after settlement moved to ``processed/``. A file that
cannot be decoded is stored whole in the dead-letter queue and moved to ``failed/`` with a
``<name>.error.txt`` beside it giving the reason. Files already in the folder at start are processed
first. A crash before the move leaves the file in place: it is read again on restart, and the
idempotency records make that a no-op for handlers that had finished (event ids come from the content).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..codec import DecodeContext, get_decoder
from ..errors import ConfigError, DecodeError, TransportError
from .base import RawRecord, SettleResult, Transport, TransportState

__all__ = ["FileOutcome", "FileSettings", "FileTransport"]

log = logging.getLogger(__name__)

DEFAULT_PATTERNS = ("*.json", "*.json.gz", "*.jsonl", "*.jsonl.gz")


class FileSettings(BaseModel):
    """Settings of a drop folder.

    Attributes:
        path: the folder watched (created if missing).
        patterns: file-name patterns taken (others are left alone).
        decoder: decoder name: ``auto`` (CFX or event JSON by content), ``cfx``, ``event-json``.
        processed_dir / failed_dir: where settled / undecodable files go (relative to ``path``).
        settle_seconds: a file must keep its size and modification time this long before it is read
            (so a file still being written is never read half-way).
        max_file_bytes: larger files are not read; they go to ``failed/``.
        concurrency: files processed at once.
        recursive: also watch sub-folders (``processed``/``failed`` are always skipped).
        move_files: move files after settlement (``False`` leaves them in place: one-shot ingest).
        force_polling: poll instead of OS notifications (network shares, some containers).
        rescan_seconds: when no change is notified for this long, list the folder anyway (missed events).
    """

    model_config = ConfigDict(extra="forbid")

    path: Path = Path("./inbox")
    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    decoder: str = "auto"
    processed_dir: str = "processed"
    failed_dir: str = "failed"
    settle_seconds: float = Field(default=0.5, ge=0)
    max_file_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    concurrency: int = Field(default=4, ge=1)
    recursive: bool = False
    move_files: bool = True
    force_polling: bool = False
    rescan_seconds: float = Field(default=1.0, gt=0)


@dataclass
class FileOutcome:
    """What became of one file: ``status`` is ``processed``, ``failed`` (undecodable, dead-lettered),
    ``error`` (not settled: left in place) or ``skipped``; ``result`` the settlement; ``reason`` for failures."""

    path: Path
    status: str
    result: SettleResult
    reason: str = ""
    moved_to: Path | None = None


class FileTransport(Transport):
    """Watch a drop folder and route every file's events.

    Args:
        settings: a ``FileSettings``, or keyword arguments for one (``path=...``).
        name: transport name (default ``file``).

    Raises:
        ConfigError: invalid settings.
    """

    kind = "file"

    def __init__(self, settings: FileSettings | None = None, *, name: str = "file", **options: Any) -> None:
        super().__init__(name)
        try:
            self.settings = settings or FileSettings(**options)
        except ValidationError as exc:
            raise ConfigError(f"file transport {name!r}: {exc}") from None
        self._decoder = get_decoder(self.settings.decoder)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[Path] = set()
        self._slots = asyncio.Semaphore(self.settings.concurrency)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.outcomes: list[FileOutcome] = []

    @classmethod
    def from_config(cls, name: str, options: dict[str, Any]) -> FileTransport:
        """Build from a configuration table (``[[transports]] kind = "file"``). Raises ``ConfigError``."""
        try:
            return cls(FileSettings.model_validate(options), name=name)
        except ValidationError as exc:
            raise ConfigError.from_validation(exc, f"transport {name!r}: ") from None

    @property
    def folder(self) -> Path:
        """The watched folder."""
        return self.settings.path

    def _skip_dirs(self) -> set[Path]:
        return {
            (self.folder / self.settings.processed_dir).resolve(),
            (self.folder / self.settings.failed_dir).resolve(),
        }

    def wanted(self, path: Path) -> bool:
        """True when ``path`` is a file this transport takes (pattern match, not hidden or temporary, not
        in ``processed``/``failed``)."""
        name = path.name
        if name.startswith(".") or name.endswith((".tmp", ".part", ".partial", ".error.txt")):
            return False
        if not any(fnmatch.fnmatch(name, p) for p in self.settings.patterns):
            return False
        parent = path.parent.resolve()
        return parent not in self._skip_dirs() and (self.settings.recursive or parent == self.folder.resolve())

    async def start(self) -> None:
        """Create the folders, process the files already there, then watch for new ones.

        Raises:
            TransportError: the folder cannot be created or is not a directory.
        """
        self._set_state(TransportState.CONNECTING)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if self.settings.move_files:
                (self.folder / self.settings.processed_dir).mkdir(exist_ok=True)
                (self.folder / self.settings.failed_dir).mkdir(exist_ok=True)
        except OSError as exc:
            self._set_state(TransportState.ERROR, str(exc))
            raise TransportError(f"drop folder {self.folder}: {exc}") from exc
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name=f"pywats-file-{self.name}")
        self._set_state(TransportState.CONNECTED)

    async def stop(self) -> None:
        """Stop watching; files being processed finish (their settlement is awaited)."""
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._set_state(TransportState.DISCONNECTED)

    def _existing(self) -> list[Path]:
        pattern = "**/*" if self.settings.recursive else "*"
        return sorted((p for p in self.folder.glob(pattern) if p.is_file() and self.wanted(p)), key=_mtime)

    async def _run(self) -> None:
        from watchfiles import Change, awatch

        for path in self._existing():
            await self._schedule(path)
        try:
            async for changes in awatch(
                self.folder,
                stop_event=self._stop,
                recursive=self.settings.recursive,
                debounce=200,
                step=50,
                force_polling=self.settings.force_polling or None,
                watch_filter=lambda change, p: change != Change.deleted and self.wanted(Path(p)),
                rust_timeout=max(50, int(self.settings.rescan_seconds * 1000)),
                yield_on_timeout=True,
            ):
                for _change, p in sorted(changes, key=lambda c: c[1]):
                    path = Path(p)
                    if path.is_file():
                        await self._schedule(path)
                # The rescan (after every batch of changes, and every rescan_seconds when idle) catches
                # files dropped between the first scan and the watch starting, files whose events were
                # coalesced away, and folders where notifications do not work.
                for path in self._existing():
                    if path not in self._inflight:
                        await self._schedule(path)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the watcher itself died: report it, the bus keeps running
            log.exception("drop folder watcher %s failed", self.folder)
            self._set_state(TransportState.ERROR, f"watcher failed: {exc}")

    async def _schedule(self, path: Path) -> None:
        if path in self._inflight:
            return
        self._inflight.add(path)
        await self._slots.acquire()  # backpressure: at most `concurrency` files at once

        async def run() -> None:
            try:
                if await self._wait_stable(path):
                    self.outcomes.append(await self.process_file(path))
            except Exception:
                log.exception("drop folder %s: processing %s failed", self.folder, path)
            finally:
                self._slots.release()
                self._inflight.discard(path)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _wait_stable(self, path: Path) -> bool:
        """Wait until size and mtime stop changing for ``settle_seconds``; False if the file vanished."""
        last: tuple[int, int] | None = None
        stable_since = time.monotonic()
        while not self._stop.is_set():
            try:
                st = path.stat()
            except FileNotFoundError:
                return False
            now = (st.st_size, st.st_mtime_ns)
            if now != last:
                last, stable_since = now, time.monotonic()
            elif time.monotonic() - stable_since >= self.settings.settle_seconds:
                return True
            await asyncio.sleep(min(0.1, max(0.02, self.settings.settle_seconds / 4)))
        return False

    async def process_file(self, path: Path) -> FileOutcome:
        """Decode, route and settle one file now (no stability wait), then move it as configured.

        Never raises for bad content: undecodable files are dead-lettered and reported as ``failed``.
        A store failure leaves the file in place (``error``) so it is tried again later.
        """
        origin = str(path)
        try:
            size = path.stat().st_size
            if size > self.settings.max_file_bytes:
                raise DecodeError(f"file is {size} bytes, over the {self.settings.max_file_bytes}-byte limit", origin)
            body = await asyncio.to_thread(path.read_bytes)
        except DecodeError as exc:
            return await self._failed(path, b"", exc)
        except OSError as exc:
            return FileOutcome(path, "error", SettleResult(), f"cannot read: {exc}")
        try:
            events = self._decoder(
                body, DecodeContext(origin=origin, headers={"transport": self.name, "file": path.name})
            )
        except DecodeError as exc:
            return await self._failed(path, body, exc)
        try:
            future = await self.sink.submit(events, transport=self.name, redelivered=None)
            result = await future
        except Exception as exc:
            log.error("drop folder %s: %s not settled (%s); left in place for a retry", self.folder, path, exc)
            return FileOutcome(path, "error", SettleResult(events=len(events)), str(exc))
        moved = self._move(path, self.settings.processed_dir)
        return FileOutcome(path, "processed", result, moved_to=moved)

    async def _failed(self, path: Path, body: bytes, exc: DecodeError) -> FileOutcome:
        await self.sink.dead_letter_raw(
            RawRecord(
                body=body,
                origin=str(path),
                transport=self.name,
                reason=exc.reason,
                error_type=type(exc).__name__,
                headers={"pywats-decoder": self.settings.decoder, "file": path.name},
            )
        )
        moved = self._move(path, self.settings.failed_dir)
        if moved is not None:
            note = moved.with_name(moved.name + ".error.txt")
            note.write_text(
                f"file: {path.name}\nerror: {type(exc).__name__}\nreason: {exc.reason}\n"
                f"when: {datetime.now(UTC).isoformat()}\n"
                "The whole file is also stored in the dead-letter queue (pywats-events dlq list).\n",
                encoding="utf-8",
            )
        return FileOutcome(path, "failed", SettleResult(dead_lettered=1), exc.reason, moved)

    def _move(self, path: Path, subdir: str) -> Path | None:
        if not self.settings.move_files:
            return None
        target_dir = self.folder / subdir
        target_dir.mkdir(exist_ok=True)
        target = target_dir / path.name
        if target.exists():  # keep both: a re-dropped file must not overwrite the earlier one
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            target = target_dir / f"{path.stem}.{stamp}{''.join(path.suffixes[-1:])}"
        os.replace(path, target)
        return target

    async def ingest(
        self, paths: Iterable[Path], *, on_file: Callable[[FileOutcome], None] | None = None
    ) -> list[FileOutcome]:
        """One-shot: process the given files one by one (for ``pywats-events ingest``), without watching.

        Args:
            paths: files to process (use ``find_inputs`` to expand folders).
            on_file: called after each file (progress reporting).
        """
        outcomes = []
        for path in paths:
            outcome = await self.process_file(path)
            outcomes.append(outcome)
            if on_file is not None:
                on_file(outcome)
        return outcomes

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out.update(folder=str(self.folder), in_flight=len(self._inflight))
        return out


def find_inputs(paths: Sequence[Path], patterns: Sequence[str] = DEFAULT_PATTERNS) -> list[Path]:
    """Expand ``paths``: files are kept as given, folders are searched recursively for ``patterns``.

    Raises:
        FileNotFoundError: a path does not exist.
    """
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(
                sorted(f for f in p.rglob("*") if f.is_file() and any(fnmatch.fnmatch(f.name, pat) for pat in patterns))
            )
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    return out


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
