"""``FileTransport``: a drop folder watched with watchfiles, for testers that write result files.

Each file matching the patterns is read once it has stopped changing, decoded (CFX envelopes or
normalized event JSON, raw or gzip), routed, and after settlement moved to ``processed/``. A file that
cannot be decoded is stored whole in the dead-letter queue and moved to ``failed/`` with a
``<name>.error.txt`` beside it giving the reason. Files already in the folder at start are processed
first. A crash before the move leaves the file in place: it is read again on restart, and the
idempotency records make that a no-op for handlers that had finished (event ids come from the content).

Decoding, dead-lettering and settling are the core's (``Transport.intake``): each file, or each line of a
JSON Lines file, is an ``InboundMessage`` whose ``ack`` does the bookkeeping and, for the file's last
message, the move; ``settle_failed`` leaves the file where it is.

JSON Lines (``*.jsonl``, ``*.jsonl.gz``, as ``pywats_cfx.explorer --generate --count`` writes them): every
non-blank line is its own message, decoded on its own. A line that cannot be decoded (invalid JSON, nested
too deeply, not an event) is its own raw dead letter with origin ``<file>:line <n>``; the other lines are
routed, and the file settles (moved to ``processed/``, with a ``.error.txt`` naming the bad lines).

A relative ``path`` is taken relative to the current directory when the transport is built (the
configuration loader first makes it relative to the configuration file's folder), and the transport works
with the absolute path from then on, so a file is never seen under two names.

Symbolic links are not followed: a link dropped in the folder is dead-lettered (reason
``symlink_not_followed``, empty body: the target's content is never read) and the link itself, not its
target, moved to ``failed/``. Files are opened with ``O_NOFOLLOW`` where the system has it, so a file
swapped for a link between the check and the read is refused too.

Raw dead-letter entries of a file get an id derived from the file's path, its bytes and the reason, so
ingesting the same folder again replaces its entries instead of piling up copies.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fnmatch
import hashlib
import logging
import os
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..codec import DecodeContext, get_decoder, maybe_gunzip
from ..dead_letter import DeadLetterReason
from ..errors import ConfigError, DecodeError, TransportError
from ..transport import InboundMessage, RawRecord, SettleResult, Transport, TransportState

__all__ = ["FileOutcome", "FileSettings", "FileTransport"]

log = logging.getLogger(__name__)

DEFAULT_PATTERNS = ("*.json", "*.json.gz", "*.jsonl", "*.jsonl.gz")

#: File names whose every line is one message (JSON Lines, https://jsonlines.org).
LINES_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")

#: Dead-letter reason of a symbolic link found in the drop folder (not followed, content not read).
SYMLINK_REASON = DeadLetterReason.SYMLINK_NOT_FOLLOWED

#: Namespace of the ids of a file's raw dead-letter entries (RFC 4122 version 5 UUIDs).
_RAW_ENTRY_NAMESPACE = uuid.UUID("6f1c2a52-5d0e-4c47-9a57-3f0f2f4f7a11")

#: Header ``entry_for_raw`` takes the entry id from (a stable id makes a re-ingest replace, not add).
_ENTRY_ID_HEADER = "pywats-entry-id"

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


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
        outcome_history: how many recent ``FileOutcome`` records ``FileTransport.outcomes`` keeps (a
            count; older ones are dropped so a long-running watcher does not grow with every file;
            ``FileTransport.counts`` keeps the totals).
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
    outcome_history: int = Field(default=1000, ge=0)


@dataclass(frozen=True, slots=True)
class BadLine:
    """One line of a JSON Lines file that could not be decoded: ``number`` (1-based), ``reason``, and the
    id of its raw dead-letter entry."""

    number: int
    reason: str
    entry_id: str


@dataclass
class FileOutcome:
    """What became of one file: ``status`` is ``processed``, ``failed`` (undecodable, dead-lettered),
    ``error`` (not settled: left in place) or ``skipped``; ``result`` the settlement; ``reason`` for failures;
    ``bad_lines`` the lines of a JSON Lines file that were dead-lettered one by one (the file itself settled)."""

    path: Path
    status: str
    result: SettleResult
    reason: str = ""
    moved_to: Path | None = None
    bad_lines: tuple[BadLine, ...] = ()


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
        # Looked up now so an unknown decoder name fails at configuration, not on the first file.
        self._decoders[self.settings.decoder] = get_decoder(self.settings.decoder)
        # One absolute name per file: the first scan, the watcher and the rescan must agree on it, or a
        # relative folder has each file scheduled twice (once as "inbox/x", once as "/cwd/inbox/x").
        self._folder = self.settings.path.expanduser().resolve()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Only files being processed are kept here (removed when done): the set is bounded by
        # ``concurrency`` plus the files waiting for a slot, never by how many files were ever seen.
        self._inflight: set[Path] = set()
        self._slots = asyncio.Semaphore(self.settings.concurrency)
        self._tasks: set[asyncio.Task[Any]] = set()
        #: The most recent outcomes (at most ``settings.outcome_history``), newest last.
        self.outcomes: deque[FileOutcome] = deque(maxlen=self.settings.outcome_history)
        #: Files per outcome status since start (``processed``, ``failed``, ``error``).
        self.counts: Counter[str] = Counter()

    @classmethod
    def from_config(cls, name: str, options: dict[str, Any]) -> FileTransport:
        """Build from a configuration table (``[[transports]] kind = "file"``). Raises ``ConfigError``."""
        try:
            return cls(FileSettings.model_validate(options), name=name)
        except ValidationError as exc:
            raise ConfigError.from_validation(exc, f"transport {name!r}: ") from None

    @property
    def folder(self) -> Path:
        """The watched folder, absolute (symbolic links in the folder's own path resolved)."""
        return self._folder

    def _skip_dirs(self) -> set[Path]:
        return {
            (self.folder / self.settings.processed_dir).resolve(),
            (self.folder / self.settings.failed_dir).resolve(),
        }

    def _absolute(self, path: Path) -> Path:
        return path if path.is_absolute() else Path.cwd() / path

    def wanted(self, path: Path) -> bool:
        """True when ``path`` is a file this transport takes (pattern match, not hidden or temporary, not
        in ``processed``/``failed``, and in the folder itself: a sub-folder reached through a symbolic link
        to somewhere else is never entered)."""
        name = path.name
        if name.startswith(".") or name.endswith((".tmp", ".part", ".partial", ".error.txt")):
            return False
        if not any(fnmatch.fnmatch(name, p) for p in self.settings.patterns):
            return False
        parent = path.parent.resolve()
        if parent in self._skip_dirs():
            return False
        return parent.is_relative_to(self.folder) if self.settings.recursive else parent == self.folder

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
        return sorted(
            (p for p in self.folder.glob(pattern) if (p.is_file() or p.is_symlink()) and self.wanted(p)), key=_mtime
        )

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
                    if path.is_file() or path.is_symlink():
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
        path = self._absolute(path)
        if path in self._inflight:
            return
        self._inflight.add(path)
        await self._slots.acquire()  # backpressure: at most `concurrency` files at once

        async def run() -> None:
            try:
                if await self._wait_stable(path):
                    outcome = await self.process_file(path)
                    self.outcomes.append(outcome)
                    self.counts[outcome.status] += 1
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
                st = path.lstat()  # a link is judged as a link, never by its target
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

        The file (or each line of a ``.jsonl`` file, see the module docstring) goes through
        ``Transport.intake``; the file is moved when its last message is settled. Never raises for bad
        content: undecodable files are dead-lettered and reported as ``failed``, a symbolic link is
        dead-lettered without reading its target. A store failure, or a bus that is not running, leaves
        the file in place (``error``) so it is tried again later.
        """
        origin = str(path)
        try:
            st = path.lstat()
            if path.is_symlink():
                raise SymlinkNotFollowedError(f"{path.name} is a symbolic link; links are not followed", origin)
            if st.st_size > self.settings.max_file_bytes:
                raise DecodeError(
                    f"file is {st.st_size} bytes, over the {self.settings.max_file_bytes}-byte limit", origin
                )
            body = await asyncio.to_thread(_read_no_follow, path)
        except SymlinkNotFollowedError as exc:
            return await self._refused(path, exc, reason_code=SYMLINK_REASON)
        except DecodeError as exc:
            return await self._refused(path, exc)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # swapped for a link after the check: O_NOFOLLOW refused it
                link = SymlinkNotFollowedError(f"{path.name} is a symbolic link; links are not followed", origin)
                return await self._refused(path, link, reason_code=SYMLINK_REASON)
            return FileOutcome(path, "error", SettleResult(), f"cannot read: {exc}")
        lines: list[tuple[int, bytes]] | None = None
        if path.name.endswith(LINES_SUFFIXES):
            try:
                text = maybe_gunzip(body, origin)
            except DecodeError:
                pass  # handed over whole: the decoder refuses it the same way and it is dead-lettered
            else:
                lines = [(n, line.rstrip(b"\r")) for n, line in enumerate(text.split(b"\n"), 1) if line.strip()]
        file = _FileSettlement(self, path, by_line=lines is not None)
        try:
            if lines is None:
                await file.hand_over(body, None)
            else:
                await self._hand_over_lines(file, lines)
        except Exception as exc:  # the bus is not running: nothing more is handed over, the file stays
            file.abandon(exc)
        return await file.close()

    async def _hand_over_lines(self, file: _FileSettlement, lines: list[tuple[int, bytes]]) -> None:
        """JSON Lines: every line is decoded on its own; a line the decoder refuses is its own message
        (``intake`` dead-letters it whole), and the good lines' events go as one message. One submission
        per file, not per line, keeps one idempotency lookup per file (a query each on SQL stores)."""
        decode = self.decoder(self.settings.decoder)
        events: list[Any] = []
        bad: list[tuple[int, bytes]] = []
        for number, line in lines:
            headers = {"transport": self.name, "file": file.path.name, "line": number}
            try:
                events.extend(decode(line, DecodeContext(origin=f"{file.path}:line {number}", headers=headers)))
            except Exception:  # handed over on its own below: intake records why (decoder bugs included)
                bad.append((number, line))
        for number, line in bad:
            await file.hand_over(line, number)
        if events or not bad:
            await file.hand_over(b"", None, events=events)

    def _raw_record(
        self,
        path: Path,
        body: bytes,
        reason: str,
        error_type: str,
        *,
        origin: str,
        line: int | None = None,
        reason_code: str = "",
        received_at: datetime | None = None,
    ) -> RawRecord:
        """A raw dead-letter record of ``path`` (or one line of it) with an id derived from origin,
        bytes and reason, so ingesting the same folder again replaces its entries."""
        digest = hashlib.sha256(body).hexdigest()
        entry_id = uuid.uuid5(_RAW_ENTRY_NAMESPACE, f"{origin}\0{digest}\0{reason}")
        headers: dict[str, Any] = {
            "pywats-decoder": self.settings.decoder,
            "file": path.name,
            _ENTRY_ID_HEADER: str(entry_id),
        }
        if line is not None:
            headers["line"] = line
        if reason_code:
            headers["pywats-reason"] = reason_code
        return RawRecord(
            body=body,
            origin=origin,
            transport=self.name,
            reason=reason,
            error_type=error_type,
            headers=headers,
            received_at=received_at or datetime.now(UTC),
            decoder=self.settings.decoder,
        )

    async def _refused(self, path: Path, exc: DecodeError, *, reason_code: str = "") -> FileOutcome:
        """A file refused before it is read (symbolic link, over ``max_file_bytes``): dead-lettered with
        an empty body (the content is never read) and moved to ``failed/``."""
        record = self._raw_record(
            path, b"", exc.reason, type(exc).__name__, origin=str(path), reason_code=reason_code
        )
        try:
            await self.sink.dead_letter_raw(record)
        except Exception as store_exc:
            log.error("drop folder %s: %s not settled (%s); left in place", self.folder, path, store_exc)
            return FileOutcome(path, "error", SettleResult(), str(store_exc))
        moved = self._move(path, self.settings.failed_dir)
        if moved is not None:
            self._write_note(path, moved, type(exc).__name__, exc.reason)
        return FileOutcome(path, "failed", SettleResult(dead_lettered=1), exc.reason, moved)

    @staticmethod
    def _write_note(path: Path, moved: Path, error_type: str, reason: str) -> None:
        note = moved.with_name(moved.name + ".error.txt")
        note.write_text(
            f"file: {path.name}\nerror: {error_type}\nreason: {reason}\n"
            f"when: {datetime.now(UTC).isoformat()}\n"
            "The input is also stored in the dead-letter queue (pywats-events dlq list).\n",
            encoding="utf-8",
        )

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
            path = self._absolute(path)
            try:
                outcome = await self.process_file(path)
            except Exception as exc:  # one file's trouble must not stop the files after it
                log.exception("ingest: processing %s failed", path)
                outcome = FileOutcome(path, "error", SettleResult(), f"{type(exc).__name__}: {exc}")
            outcomes.append(outcome)
            if on_file is not None:
                on_file(outcome)
        return outcomes

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out.update(folder=str(self.folder), in_flight=len(self._inflight))
        return out


class _FileMessage(InboundMessage):
    """A whole file, or one line of a JSON Lines file, as handed to ``Transport.intake``: settling it
    tells the file's ``_FileSettlement``, which moves the file once its last message is settled."""

    __slots__ = ("_file", "line", "refusal")

    def __init__(self, file: _FileSettlement, body: bytes, line: int | None, **kw: Any) -> None:
        super().__init__(body, **kw)
        self._file = file
        self.line = line
        #: ``(error type, reason)`` when the decoder refused the body (for the ``.error.txt`` note).
        self.refusal: tuple[str, str] | None = None

    def dead_letter_record(self, record: RawRecord) -> RawRecord:
        # The file's own record: a stable entry id (re-ingest replaces) and the file's header names.
        self.refusal = (record.error_type, record.reason)
        return self._file.transport._raw_record(
            self._file.path,
            record.body,
            record.reason,
            record.error_type,
            origin=record.origin,
            line=self.line,
            received_at=record.received_at,
        )

    async def ack(self, result: SettleResult) -> None:
        self._file.settled(self, result)

    async def settle_failed(self, exc: BaseException) -> None:
        self._file.failed(exc)


class _FileSettlement:
    """The bookkeeping of one file between its hand-over and its move: how many of its messages are
    not settled yet, what they produced, and the ``FileOutcome`` once the last one is settled."""

    def __init__(self, transport: FileTransport, path: Path, *, by_line: bool) -> None:
        self.transport = transport
        self.path = path
        self.by_line = by_line
        self.result = SettleResult()
        self.bad: list[BadLine] = []
        self.raw_failure: tuple[str, str] | None = None  # (error type, reason) of a whole undecodable file
        self.error: BaseException | None = None
        self._pending = 0
        self._closed = False
        self._outcome: asyncio.Future[FileOutcome] = asyncio.get_running_loop().create_future()

    async def hand_over(self, body: bytes, line: int | None, *, events: list[Any] | None = None) -> None:
        """Hand one message of the file to ``intake`` (waits while the bus is full): the whole file, one
        line (``line``: its 1-based number), or the decoded ``events`` of a JSON Lines file's good lines.

        Raises:
            BusClosedError: the bus is not running (the message was not taken).
        """
        t = self.transport
        headers: dict[str, Any] = {"transport": t.name, "file": self.path.name}
        origin = str(self.path)
        if line is not None:
            headers["line"] = line
            origin = f"{self.path}:line {line}"
        message = _FileMessage(
            self, body, line, origin=origin, decoder=t.settings.decoder, headers=headers, events=events
        )
        self._pending += 1
        try:
            await t.intake(message)
        except BaseException:
            self._pending -= 1
            raise

    def settled(self, message: _FileMessage, result: SettleResult) -> None:
        self.result.merge(result)
        if message.dead_letter_id is not None:
            refusal = message.refusal or ("DecodeError", "")
            if self.by_line:
                self.bad.append(BadLine(message.line or 0, refusal[1], message.dead_letter_id))
            else:
                self.raw_failure = refusal
        self._pending -= 1
        self._maybe_finish()

    def failed(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self._pending -= 1
        self._maybe_finish()

    def abandon(self, exc: BaseException) -> None:
        """The rest of the file could not be handed over: the file stays in place (``error``)."""
        if self.error is None:
            self.error = exc

    async def close(self) -> FileOutcome:
        """Every message is handed over; wait until they are settled and the file moved."""
        self._closed = True
        self._maybe_finish()
        return await self._outcome

    def _maybe_finish(self) -> None:
        if self._pending or not self._closed or self._outcome.done():
            return
        try:
            outcome = self._finish()
        except Exception as exc:  # the move failed: the file stays and is tried again
            log.exception("drop folder %s: settling %s failed", self.transport.folder, self.path)
            outcome = FileOutcome(self.path, "error", self.result, f"{type(exc).__name__}: {exc}")
        self._outcome.set_result(outcome)

    def _finish(self) -> FileOutcome:
        t, path = self.transport, self.path
        bad = tuple(sorted(self.bad, key=lambda b: b.number))
        if self.error is not None:
            log.error("drop folder %s: %s not settled (%s); left in place for a retry", t.folder, path, self.error)
            return FileOutcome(path, "error", self.result, str(self.error), bad_lines=bad)
        if self.raw_failure is not None:
            error_type, reason = self.raw_failure
            moved = t._move(path, t.settings.failed_dir)
            if moved is not None:
                t._write_note(path, moved, error_type, reason)
            return FileOutcome(path, "failed", SettleResult(dead_lettered=1), reason, moved)
        lines = "\n".join(f"line {b.number}: {b.reason}" for b in bad)
        if bad and not self.result.events:
            # Nothing in the file was usable: it goes to failed/ like any undecodable file, but each line
            # keeps its own entry (replayable one by one).
            moved = t._move(path, t.settings.failed_dir)
            if moved is not None:
                t._write_note(path, moved, "DecodeError", lines)
            return FileOutcome(
                path, "failed", SettleResult(dead_lettered=len(bad)), f"every line failed; {lines}", moved, bad
            )
        moved = t._move(path, t.settings.processed_dir)
        reason = ""
        if bad:
            reason = f"{len(bad)} line(s) dead-lettered: " + "; ".join(
                f"line {b.number}: {b.reason}" for b in bad[:5]
            )
            if moved is not None:
                t._write_note(path, moved, "DecodeError", lines)
        return FileOutcome(path, "processed", self.result, reason, moved_to=moved, bad_lines=bad)


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
        return path.lstat().st_mtime
    except OSError:
        return 0.0


class SymlinkNotFollowedError(DecodeError):
    """A symbolic link in the drop folder (refused, never followed)."""


def _read_no_follow(path: Path) -> bytes:
    """The file's bytes, refusing a symbolic link at the last path component (``OSError`` ``ELOOP``)."""
    fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        return f.read()
