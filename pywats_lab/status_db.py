"""The LARA-style status DB: processes, experiments, steps, containers, device positions and estimates.

Code written against ``platform_status_db.larastatus.status_db_implementation`` runs with the prefix changed
to ``pywats_lab.status_db``::

    db = StatusDBImplementation()                       # PYWATS_LAB_DB, else sqlite:///pywats-lab.db
    process_uuid = db.add_process_to_db(name="Cell Screening", src=process_code)
    experiment_uuid = db.create_experiment(process_uuid)
    db.add_container(ContainerInfo(name="P1", current_device="Hamilton_STAR", current_pos=0, barcode="S1"))
    db.moved_container("Hamilton_STAR", 0, "Incubator", 5, "S1")
    db.safe_step_to_db(step, db.get_cont_info_by_barcode("S1"), experiment_uuid)
    db.get_estimated_duration(step, confidence=0.95)

The calls are synchronous, as the document writes them. The same operations are coroutines on
``db.aio`` (``await db.aio.moved_container(...)``) for the bus. Underneath is SQLAlchemy 2 async (aiosqlite
or asyncpg) on one private event loop in a worker thread: both faces share one engine, so a script and the
bus handlers in one process never use a connection from the wrong loop. Do not call the synchronous
methods from inside a coroutine on the bus loop (they block it); use ``db.aio`` there.

Every write is one transaction: a refused operation (``LabDataError`` subclasses: unknown barcode, occupied
target, a container not at the named source, a step finishing before it starts) writes nothing. SQLite
write transactions are ``BEGIN IMMEDIATE`` so two writers (threads or processes) queue on the file lock
rather than failing on a lock upgrade; PostgreSQL locks the container row (``SELECT ... FOR UPDATE``), and
partial unique indexes (one live container per barcode, one per position) hold even against a writer that
skipped both.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import sqlite3
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
    func,
    select,
    text,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from pywats_events import jsonsafe

from .errors import (
    ContainerNotAtPositionError,
    DuplicateContainerError,
    LabConfigError,
    PositionOccupiedError,
    StatusDBError,
    StepTimeError,
    UnknownContainerError,
    UnknownDeviceError,
    UnknownExperimentError,
    UnknownProcessError,
)
from .estimation import HistoryQuery, estimate_from_samples, historians_for, params_key
from .settings import LabConfig, LabSettings
from .structures import ContainerInfo, DeviceInfo, MoveStep, ProcessStep

__all__ = [
    "AsyncStatusDB",
    "DeviceStatistics",
    "ExperimentSummary",
    "StatusDBImplementation",
    "StepRecord",
]

P = ParamSpec("P")
T = TypeVar("T")

metadata = MetaData()

processes = Table(
    "lab_processes",
    metadata,
    Column("uuid", String(36), primary_key=True),
    Column("name", String(500), nullable=False),
    Column("src", Text, nullable=False, default=""),
    Column("created", Float, nullable=False),
)
experiments = Table(
    "lab_experiments",
    metadata,
    Column("uuid", String(36), primary_key=True),
    Column("process_uuid", String(36), ForeignKey("lab_processes.uuid"), nullable=False, index=True),
    Column("created", Float, nullable=False),
)
devices = Table(
    "lab_devices",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("positions", Integer, nullable=True),
)
positions = Table(
    "lab_positions",
    metadata,
    Column("device", String(200), ForeignKey("lab_devices.name"), primary_key=True),
    Column("slot", Integer, primary_key=True),
)
containers = Table(
    "lab_containers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("barcode", String(200), nullable=False),
    Column("name", String(500), nullable=False),
    Column("device", String(200), nullable=False),
    Column("pos", Integer, nullable=False),
    Column("start_device", String(200), nullable=False),
    Column("start_pos", Integer, nullable=False),
    Column("lidded", Boolean, nullable=False),
    Column("filled", Boolean, nullable=False),
    Column("removed", Boolean, nullable=False),
)
# One live container per barcode and per position; removed ones stay for their history.
Index(
    "ux_lab_containers_barcode",
    containers.c.barcode,
    unique=True,
    sqlite_where=containers.c.removed.is_(False),
    postgresql_where=containers.c.removed.is_(False),
)
Index(
    "ux_lab_containers_position",
    containers.c.device,
    containers.c.pos,
    unique=True,
    sqlite_where=containers.c.removed.is_(False),
    postgresql_where=containers.c.removed.is_(False),
)
steps = Table(
    "lab_steps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uuid", String(64), nullable=False, unique=True),
    Column("kind", String(8), nullable=False),
    Column("name", String(500), nullable=False),
    Column("device", String(200), nullable=False),
    Column("fct", String(200), nullable=True),
    Column("params", String(32), nullable=False),
    Column("data", Text, nullable=False),
    Column("start", Float, nullable=False),
    Column("finish", Float, nullable=True),
    Column("duration", Float, nullable=True),
    Column("status", String(100), nullable=False),
    Column("container_id", Integer, ForeignKey("lab_containers.id"), nullable=True),
    Column("experiment_uuid", String(36), ForeignKey("lab_experiments.uuid"), nullable=True),
    Column("origin_device", String(200), nullable=True),
    Column("origin_pos", Integer, nullable=True),
    Column("target_device", String(200), nullable=True),
    Column("target_pos", Integer, nullable=True),
)
# Covering indexes for the historians: the newest N durations of one match come from the index alone.
# Each matches one HistoryQuery shape with ``id`` last but one, so "ORDER BY id DESC LIMIT n" walks the index
# backwards and stops after n entries instead of sorting every match.
c_ = steps.c
Index("ix_lab_steps_protocol", c_.kind, c_.fct, c_.device, c_.params, c_.id, c_.duration)
Index("ix_lab_steps_general", c_.kind, c_.fct, c_.device, c_.id, c_.duration)
Index("ix_lab_steps_fct", c_.kind, c_.fct, c_.id, c_.duration)
Index("ix_lab_steps_move", c_.kind, c_.origin_device, c_.target_device, c_.id, c_.duration)
Index("ix_lab_steps_device", steps.c.device, steps.c.duration)
Index("ix_lab_steps_container", steps.c.container_id, steps.c.start)
Index("ix_lab_steps_experiment", steps.c.experiment_uuid, steps.c.start)
orders = Table(
    "lab_orders",
    metadata,
    Column("order_id", String(200), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("capabilities", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("module", String(200), nullable=True),
    Column("seen_running", Boolean, nullable=False, default=False),
)


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One recorded step, as the history queries return it.

    Attributes:
        uuid / kind (``process`` or ``move``) / name / device (executing) / fct / data / status.
        start / finish: timezone-aware UTC (finish ``None`` while running).
        duration: seconds, ``None`` while running.
        barcode: the container's barcode, if the step had one. experiment_uuid: its experiment, if any.
        origin_device / origin_pos / target_device / target_pos: for moves.
    """

    uuid: str
    kind: str
    name: str
    device: str
    fct: str | None
    data: dict[str, Any]
    status: str
    start: datetime
    finish: datetime | None
    duration: float | None
    barcode: str | None
    experiment_uuid: str | None
    origin_device: str | None = None
    origin_pos: int | None = None
    target_device: str | None = None
    target_pos: int | None = None


@dataclass(frozen=True, slots=True)
class DeviceStatistics:
    """Finished steps executed by one device: ``count`` and ``min``/``avg``/``max`` duration in seconds
    (``None`` when count is 0)."""

    device: str
    count: int
    min: float | None
    avg: float | None
    max: float | None


@dataclass(frozen=True, slots=True)
class ExperimentSummary:
    """An experiment's steps: ``step_count``, ``first_start`` / ``last_finish`` (UTC) and ``duration`` in
    seconds from the first start to the last finish (``None`` when no step finished)."""

    experiment_uuid: str
    process_name: str
    step_count: int
    first_start: datetime | None
    last_finish: datetime | None
    duration: float | None


def _ts(value: datetime) -> float:
    # Naive times are local wall-clock times (what datetime.now() gives, as the document uses).
    return value.timestamp() if value.tzinfo is not None else value.astimezone(UTC).timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _now() -> float:
    return datetime.now(UTC).timestamp()


class _Portal:
    """A private event loop in a daemon thread: every database coroutine runs there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="pywats-lab-status-db", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def is_current(self) -> bool:
        return threading.current_thread() is self._thread

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self.is_current():
            coro.close()
            raise RuntimeError("a synchronous status DB call from inside its own loop would deadlock")
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result()

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
        if not self.loop.is_running():
            self.loop.close()


def _on_portal(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Run the coroutine method on the status DB's own loop, whichever loop awaits it."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        portal: _Portal = args[0]._portal  # type: ignore[attr-defined]
        if portal.is_current():
            return await _guarded(fn.__name__, fn(*args, **kwargs))
        future = asyncio.run_coroutine_threadsafe(_guarded(fn.__name__, fn(*args, **kwargs)), portal.loop)
        return await asyncio.wrap_future(future)

    return wrapper


def _driver_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [SQLAlchemyError, OSError, sqlite3.Error]
    try:
        import asyncpg

        errors += [asyncpg.PostgresError, asyncpg.InterfaceError]
    except ImportError:
        pass
    return tuple(errors)


_DRIVER_ERRORS = _driver_errors()


async def _guarded(what: str, aw: Awaitable[T]) -> T:
    # Database failures (not data problems, which are LabDataError already) reach callers as StatusDBError
    # naming the call, whatever the driver: the bus retries them, a script can catch one class.
    try:
        return await aw
    except StatusDBError:
        raise
    except _DRIVER_ERRORS as exc:
        raise StatusDBError(f"status DB {what}: {type(exc).__name__}: {exc}") from exc


def _async_url(raw: str) -> tuple[URL, bool]:
    if "://" not in raw:
        raw = f"sqlite:///{raw}"
    try:
        url = make_url(raw)
    except Exception as exc:
        raise LabConfigError(f"lab.db: {raw!r} is not a database URL ({exc})") from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.database:
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return url.set(drivername="sqlite+aiosqlite"), True
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+asyncpg"), False
    raise LabConfigError(f"lab.db: unsupported database {backend!r}; use sqlite:/// or postgresql://")


class AsyncStatusDB:
    """The status DB's coroutines (``db.aio``); the same operations as ``StatusDBImplementation``.

    Args:
        settings: the lab settings (URL, configuration file, strictness, history window).
    """

    def __init__(self, settings: LabSettings, portal: _Portal) -> None:
        self.settings = settings
        self._portal = portal
        self._url, self._sqlite = _async_url(settings.db)
        self._config = LabConfig.from_file(settings.config_file) if settings.config_file else LabConfig()
        self._engine: AsyncEngine | None = None
        self._read_engine: AsyncEngine | None = None
        self._ready: asyncio.Lock | None = None
        self._seq = 0

    # -- engine ---------------------------------------------------------------------------------------
    def _make_engines(self) -> tuple[AsyncEngine, AsyncEngine]:
        if not self._sqlite:
            write = create_async_engine(self._url, pool_pre_ping=True)
            # Estimates are prepared statements (asyncpg); a generic plan cannot know which device or fct is
            # asked for and may walk the whole primary key. Custom plans cost a fraction of a millisecond.
            read = create_async_engine(
                self._url,
                pool_pre_ping=True,
                isolation_level="AUTOCOMMIT",
                pool_reset_on_return=None,
                connect_args={"server_settings": {"plan_cache_mode": "force_custom_plan"}},
            )
            return write, read

        def pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        write = create_async_engine(self._url)
        # Reads run in autocommit: each SELECT is its own snapshot, with no BEGIN/ROLLBACK round trips to
        # the driver thread (what an estimate's latency is made of).
        read = create_async_engine(self._url, pool_reset_on_return=None)
        for eng in (write, read):
            event.listen(eng.sync_engine, "connect", pragmas)

        def begin_immediate(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        event.listen(write.sync_engine, "begin", begin_immediate)
        return write, read

    async def _engines(self) -> tuple[AsyncEngine, AsyncEngine]:
        if self._engine is not None and self._read_engine is not None:
            return self._engine, self._read_engine
        if self._ready is None:
            self._ready = asyncio.Lock()
        async with self._ready:
            if self._engine is None:
                await self._migrate()
                write, read = self._make_engines()
                try:
                    async with write.begin() as conn:
                        for name, dev in self._config.devices.items():
                            await self._ensure_device(conn, name, dev.positions)
                        self._seq = int(
                            (await conn.execute(select(func.coalesce(func.max(orders.c.seq), 0)))).scalar_one()
                        )
                except SQLAlchemyError as exc:
                    await write.dispose()
                    if read is not write:
                        await read.dispose()
                    raise StatusDBError(f"status DB {self._safe_url()}: cannot open: {exc}") from None
                self._engine, self._read_engine = write, read
        assert self._engine is not None and self._read_engine is not None
        return self._engine, self._read_engine

    async def _migrate(self) -> None:
        """Bring the tables to the newest lab revision (``pywats_lab.migrations``), on an engine of its own
        (the write engine's ``BEGIN IMMEDIATE`` listener would nest inside the schema lock's).

        Raises:
            StatusDBError: the database cannot be reached, or its schema is newer or foreign.
        """
        from pywats_events.errors import StoreSchemaError

        from . import migrations

        engine = create_async_engine(self._url)
        if self._sqlite:

            def busy(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.execute("PRAGMA busy_timeout=30000")  # wait for another process's upgrade

            event.listen(engine.sync_engine, "connect", busy)
        try:
            await migrations.upgrade(engine)
        except (SQLAlchemyError, StoreSchemaError) as exc:
            raise StatusDBError(f"status DB {self._safe_url()}: cannot bring its schema up to date: {exc}") from None
        finally:
            await engine.dispose()

    def _safe_url(self) -> str:
        return self._url.render_as_string(hide_password=True)

    @_on_portal
    async def dispose(self) -> None:
        """Close the connection pools (on the status DB's own loop, where the connections live)."""
        for eng in {id(e): e for e in (self._engine, self._read_engine) if e is not None}.values():
            await eng.dispose()
        self._engine = self._read_engine = None

    # -- devices and positions --------------------------------------------------------------------------
    async def _ensure_device(self, conn: AsyncConnection, name: str, count: int | None = None) -> None:
        found = (await conn.execute(select(devices.c.positions).where(devices.c.name == name))).first()
        if found is None:
            await conn.execute(devices.insert().values(name=name, positions=count))
        if count:
            have = set((await conn.execute(select(positions.c.slot).where(positions.c.device == name))).scalars())
            missing = [{"device": name, "slot": s} for s in range(count) if s not in have]
            if missing:
                await conn.execute(positions.insert(), missing)

    async def _ensure_position(self, conn: AsyncConnection, device: str, slot: int, what: str) -> None:
        if not device:
            raise UnknownDeviceError(f"{what}: the device name is empty")
        if slot < 0:
            raise UnknownDeviceError(f"{what}: position {slot} on {device!r} is negative")
        if self.settings.strict_devices:
            known = self._config.devices.get(device)
            if known is None:
                raise UnknownDeviceError(
                    f"{what}: device {device!r} is not in the lab configuration; known: {sorted(self._config.devices)}"
                )
            if slot >= known.positions:
                raise UnknownDeviceError(f"{what}: {device!r} has positions 0..{known.positions - 1}, not {slot}")
            return
        await self._ensure_device(conn, device)
        exists = (
            await conn.execute(select(positions.c.slot).where(positions.c.device == device, positions.c.slot == slot))
        ).first()
        if exists is None:
            await conn.execute(positions.insert().values(device=device, slot=slot))

    @_on_portal
    async def get_all_positions(self, device: str) -> list[int]:
        """Slot numbers of ``device`` in ascending order (empty for a device never named)."""
        _, read = await self._engines()
        async with read.connect() as conn:
            rows = await conn.execute(select(positions.c.slot).where(positions.c.device == device).order_by("slot"))
            return list(rows.scalars())

    @_on_portal
    async def get_devices(self) -> list[DeviceInfo]:
        """Every device known (configured or named by a container or step), by name."""
        _, read = await self._engines()
        async with read.connect() as conn:
            rows = await conn.execute(select(devices.c.name, devices.c.positions).order_by(devices.c.name))
            return [DeviceInfo(name=r.name, num_slots=r.positions) for r in rows]

    @_on_portal
    async def position_empty(self, device: str, pos: int) -> bool:
        """True when no container on the platform is at ``device`` position ``pos``."""
        return await self.get_container_at_position(device, pos) is None

    @_on_portal
    async def get_container_at_position(self, device: str, pos: int) -> ContainerInfo | None:
        """The container at ``device`` position ``pos``, or ``None``."""
        _, read = await self._engines()
        async with read.connect() as conn:
            row = (
                await conn.execute(
                    select(containers).where(
                        containers.c.device == device, containers.c.pos == pos, containers.c.removed.is_(False)
                    )
                )
            ).first()
            return None if row is None else _container(row)

    # -- processes and experiments ----------------------------------------------------------------------
    @_on_portal
    async def add_process_to_db(self, name: str, src: str) -> str:
        """Store a process (a reusable workflow definition); returns its new UUID.

        Raises:
            ValueError: ``name`` is empty.
        """
        if not name or not name.strip():
            raise ValueError("add_process_to_db: name must not be empty")
        write, _ = await self._engines()
        process_uuid = str(uuid.uuid4())
        async with write.begin() as conn:
            await conn.execute(processes.insert().values(uuid=process_uuid, name=name, src=src or "", created=_now()))
        return process_uuid

    @_on_portal
    async def get_available_processes(self) -> list[tuple[str, str]]:
        """Every process as ``(name, uuid)``, oldest first."""
        _, read = await self._engines()
        async with read.connect() as conn:
            rows = await conn.execute(select(processes.c.name, processes.c.uuid).order_by(processes.c.created))
            return [(r.name, r.uuid) for r in rows]

    @_on_portal
    async def get_process(self, process_uuid: str) -> str:
        """The source (``src``) of the process.

        Raises:
            UnknownProcessError: no process with that UUID.
        """
        _, read = await self._engines()
        async with read.connect() as conn:
            row = (await conn.execute(select(processes.c.src).where(processes.c.uuid == str(process_uuid)))).first()
        if row is None:
            raise UnknownProcessError(f"no process {process_uuid!r} in the status DB")
        return str(row.src)

    @_on_portal
    async def create_experiment(self, process_uuid: str) -> str:
        """Start a new experiment (one run) of a process; returns the experiment's UUID.

        Raises:
            UnknownProcessError: no process with that UUID.
        """
        write, _ = await self._engines()
        experiment_uuid = str(uuid.uuid4())
        async with write.begin() as conn:
            found = (await conn.execute(select(processes.c.uuid).where(processes.c.uuid == str(process_uuid)))).first()
            if found is None:
                raise UnknownProcessError(f"create_experiment: no process {process_uuid!r} in the status DB")
            await conn.execute(
                experiments.insert().values(uuid=experiment_uuid, process_uuid=str(process_uuid), created=_now())
            )
        return experiment_uuid

    @_on_portal
    async def ensure_experiment(self, experiment_uuid: str, process_name: str, src: str = "") -> bool:
        """Create experiment ``experiment_uuid`` of the process named ``process_name`` (created too, with
        ``src``, when no process has that name) unless it exists; True when it was created. Used by the
        ``lab-status-db`` handler so a redelivered ``lab.experiment.started`` changes nothing.

        Raises:
            ValueError: empty ``experiment_uuid`` or ``process_name``.
        """
        if not experiment_uuid or not process_name:
            raise ValueError("ensure_experiment: experiment_uuid and process_name must not be empty")
        write, _ = await self._engines()
        async with write.begin() as conn:
            query = select(experiments.c.uuid).where(experiments.c.uuid == experiment_uuid)
            if (await conn.execute(query)).first() is not None:
                return False
            row = (
                await conn.execute(
                    select(processes.c.uuid).where(processes.c.name == process_name).order_by(processes.c.created)
                )
            ).first()
            if row is None:
                process_uuid = str(uuid.uuid4())
                await conn.execute(
                    processes.insert().values(uuid=process_uuid, name=process_name, src=src or "", created=_now())
                )
            else:
                process_uuid = row.uuid
            await conn.execute(
                experiments.insert().values(uuid=experiment_uuid, process_uuid=process_uuid, created=_now())
            )
        return True

    @_on_portal
    async def get_experiments(self, process_uuid: str | None = None) -> list[str]:
        """Experiment UUIDs (of one process, or all), oldest first."""
        _, read = await self._engines()
        query = select(experiments.c.uuid).order_by(experiments.c.created)
        if process_uuid is not None:
            query = query.where(experiments.c.process_uuid == str(process_uuid))
        async with read.connect() as conn:
            return list((await conn.execute(query)).scalars())

    # -- containers -------------------------------------------------------------------------------------
    @_on_portal
    async def add_container(self, container_info: ContainerInfo) -> ContainerInfo:
        """Put a container on the platform at ``current_device`` / ``current_pos`` (its starting position).

        Returns:
            The container as stored (``start_device`` / ``start_pos`` filled).

        Raises:
            DuplicateContainerError: a container with that barcode is already on the platform.
            PositionOccupiedError: another container is at that position.
            UnknownDeviceError: strict configuration and the device/position is not in it.
            ValueError: empty barcode.
        """
        c = container_info
        if not c.barcode or not str(c.barcode).strip():
            raise ValueError("add_container: the barcode must not be empty")
        what = f"add_container({c.barcode!r})"
        write, _ = await self._engines()
        try:
            async with write.begin() as conn:
                await self._ensure_position(conn, c.current_device, int(c.current_pos), what)
                if await self._live(conn, c.barcode) is not None:
                    raise DuplicateContainerError(f"{what}: barcode {c.barcode!r} is already on the platform")
                await self._check_empty(conn, c.current_device, int(c.current_pos), what)
                await conn.execute(
                    containers.insert().values(
                        barcode=c.barcode, name=c.name or c.barcode, device=c.current_device, pos=int(c.current_pos),
                        start_device=c.current_device, start_pos=int(c.current_pos), lidded=bool(c.lidded),
                        filled=bool(c.filled), removed=False,
                    )
                )
        except IntegrityError:
            raise PositionOccupiedError(
                f"{what}: {c.current_device!r} position {c.current_pos} or barcode {c.barcode!r} was taken meanwhile"
            ) from None
        return ContainerInfo(
            name=c.name or c.barcode, current_device=c.current_device, current_pos=int(c.current_pos),
            barcode=c.barcode, lidded=bool(c.lidded), filled=bool(c.filled), start_device=c.current_device,
            start_pos=int(c.current_pos),
        )

    async def _live(self, conn: AsyncConnection, barcode: str, *, lock: bool = False) -> Any:
        query = select(containers).where(containers.c.barcode == barcode, containers.c.removed.is_(False))
        if lock and not self._sqlite:
            query = query.with_for_update()
        return (await conn.execute(query)).first()

    async def _check_empty(self, conn: AsyncConnection, device: str, pos: int, what: str) -> None:
        other = (
            await conn.execute(
                select(containers.c.barcode).where(
                    containers.c.device == device, containers.c.pos == pos, containers.c.removed.is_(False)
                )
            )
        ).first()
        if other is not None:
            raise PositionOccupiedError(f"{what}: {device!r} position {pos} already holds {other.barcode!r}")

    @_on_portal
    async def get_cont_info_by_barcode(self, barcode: str) -> ContainerInfo | None:
        """The container on the platform with ``barcode``, or ``None`` (never added, or removed)."""
        _, read = await self._engines()
        async with read.connect() as conn:
            row = await self._live(conn, barcode)
        return None if row is None else _container(row)

    @_on_portal
    async def get_containers(self) -> list[ContainerInfo]:
        """Every container on the platform, by barcode."""
        _, read = await self._engines()
        async with read.connect() as conn:
            rows = await conn.execute(
                select(containers).where(containers.c.removed.is_(False)).order_by(containers.c.barcode)
            )
            return [_container(r) for r in rows]

    @_on_portal
    async def moved_container(
        self, source_device: str, source_pos: int, target_device: str, target_pos: int, barcode: str
    ) -> ContainerInfo:
        """Record that the container ``barcode`` moved from ``source_device``/``source_pos`` to
        ``target_device``/``target_pos``.

        Returns:
            The container at its new position.

        Raises:
            UnknownContainerError: no container with that barcode on the platform.
            ContainerNotAtPositionError: the container is not at the source position.
            PositionOccupiedError: another container is at the target position.
            UnknownDeviceError: strict configuration and the target is not in it.
        """
        what = f"moved_container({barcode!r}: {source_device}[{source_pos}] -> {target_device}[{target_pos}])"
        write, _ = await self._engines()
        try:
            async with write.begin() as conn:
                row = await self._move(
                    conn, source_device, int(source_pos), target_device, int(target_pos), barcode, what
                )
        except IntegrityError:
            raise PositionOccupiedError(f"{what}: the target position was taken meanwhile") from None
        return row

    async def _move(
        self, conn: AsyncConnection, src: str, src_pos: int, dst: str, dst_pos: int, barcode: str, what: str
    ) -> ContainerInfo:
        row = await self._live(conn, barcode, lock=True)
        if row is None:
            raise UnknownContainerError(f"{what}: no container with barcode {barcode!r} on the platform")
        if (row.device, row.pos) != (src, src_pos):
            raise ContainerNotAtPositionError(
                f"{what}: {barcode!r} is at {row.device}[{row.pos}], not {src}[{src_pos}]"
            )
        if (src, src_pos) != (dst, dst_pos):
            await self._ensure_position(conn, dst, dst_pos, what)
            await self._check_empty(conn, dst, dst_pos, what)
            await conn.execute(containers.update().where(containers.c.id == row.id).values(device=dst, pos=dst_pos))
        moved = _container(row)
        moved.current_device, moved.current_pos = dst, dst_pos
        return moved

    @_on_portal
    async def remove_container(self, barcode: str) -> None:
        """Record that the container left the platform (its history stays).

        Raises:
            UnknownContainerError: no container with that barcode on the platform.
        """
        write, _ = await self._engines()
        async with write.begin() as conn:
            row = await self._live(conn, barcode, lock=True)
            if row is None:
                raise UnknownContainerError(f"remove_container: no container with barcode {barcode!r} on the platform")
            await conn.execute(containers.update().where(containers.c.id == row.id).values(removed=True))

    # -- steps ------------------------------------------------------------------------------------------
    @_on_portal
    async def safe_step_to_db(
        self, step: ProcessStep, container_info: ContainerInfo | None = None, experiment_uuid: str | None = None
    ) -> str:
        """Record a process or move step (the document's ``safe_step_to_db``); recording a step with the same
        ``uuid`` again updates it (a step recorded when it started, then when it finished).

        Args:
            step: a ``ProcessStep`` or ``MoveStep`` with ``start`` set (``finish`` may be ``None`` while it
                runs).
            container_info: the container it worked on (by barcode), or ``None``.
            experiment_uuid: the experiment it belongs to, or ``None``.

        Returns:
            The step's uuid.

        Raises:
            StepTimeError: no ``start``, or ``finish`` before ``start``.
            UnknownContainerError: ``container_info`` names a barcode not on the platform.
            UnknownExperimentError: no experiment with that UUID.
        """
        write, _ = await self._engines()
        values = _step_values(step)
        async with write.begin() as conn:
            values.update(await self._step_refs(conn, step, container_info, experiment_uuid))
            await self._upsert_step(conn, values)
        return str(values["uuid"])

    async def _step_refs(
        self, conn: AsyncConnection, step: ProcessStep, container: ContainerInfo | None, experiment_uuid: str | None
    ) -> dict[str, Any]:
        refs: dict[str, Any] = {"container_id": None, "experiment_uuid": None}
        if container is not None:
            row = await self._live(conn, container.barcode)
            if row is None:
                removed = (
                    await conn.execute(
                        select(containers.c.id).where(containers.c.barcode == container.barcode)
                        .order_by(containers.c.id.desc()).limit(1)
                    )
                ).first()
                if removed is None:
                    raise UnknownContainerError(
                        f"step {step.name!r}: no container with barcode {container.barcode!r} in the status DB"
                    )
                row = removed
            refs["container_id"] = row.id
        if experiment_uuid is not None:
            found = (
                await conn.execute(select(experiments.c.uuid).where(experiments.c.uuid == str(experiment_uuid)))
            ).first()
            if found is None:
                raise UnknownExperimentError(f"step {step.name!r}: no experiment {experiment_uuid!r} in the status DB")
            refs["experiment_uuid"] = str(experiment_uuid)
        await self._ensure_device(conn, step.main_device.name)
        return refs

    async def _upsert_step(self, conn: AsyncConnection, values: dict[str, Any]) -> None:
        existing = (await conn.execute(select(steps.c.id).where(steps.c.uuid == values["uuid"]))).first()
        if existing is None:
            await conn.execute(steps.insert().values(**values))
        else:
            await conn.execute(steps.update().where(steps.c.id == existing.id).values(**values))

    @_on_portal
    async def record_move(
        self, step: MoveStep, barcode: str, experiment_uuid: str | None = None
    ) -> ContainerInfo:
        """``moved_container`` and ``safe_step_to_db`` of the move step in one transaction (what the
        ``lab-status-db`` handler does for ``lab.container.moved``). A step uuid already recorded is a
        redelivered event: nothing changes and the container is returned where it is.

        Raises:
            the errors of ``moved_container`` and ``safe_step_to_db``.
        """
        if step.origin_device is None or step.target_device is None:
            raise ValueError(f"move step {step.name!r}: origin_device and target_device are required")
        values = _step_values(step)
        what = (
            f"move {barcode!r}: {step.origin_device.name}[{step.origin_pos}] -> "
            f"{step.target_device.name}[{step.destination_pos}]"
        )
        write, _ = await self._engines()
        try:
            async with write.begin() as conn:
                seen = (await conn.execute(select(steps.c.id).where(steps.c.uuid == values["uuid"]))).first()
                if seen is not None:
                    row = await self._live(conn, barcode)
                    if row is None:
                        raise UnknownContainerError(f"{what}: no container with barcode {barcode!r} on the platform")
                    return _container(row)
                moved = await self._move(
                    conn, step.origin_device.name, int(step.origin_pos), step.target_device.name,
                    int(step.destination_pos), barcode, what,
                )
                values.update(await self._step_refs(conn, step, moved, experiment_uuid))
                await self._upsert_step(conn, values)
        except IntegrityError:
            raise PositionOccupiedError(f"{what}: the target position was taken meanwhile") from None
        return moved

    @_on_portal
    async def add_steps_bulk(self, records: Sequence[dict[str, Any]]) -> int:
        """Insert many finished steps at once (history imports, benchmarks); returns the count.

        Each record: ``name``, ``device``, ``fct``, ``data`` (dict), ``start`` / ``finish`` (datetimes or
        epoch seconds), optional ``kind`` (``process``/``move``), ``origin_device``, ``target_device``,
        ``status``. No container or experiment links.

        Raises:
            StepTimeError: a record finishes before it starts.
        """
        rows = []
        for i, r in enumerate(records):
            start = r["start"] if isinstance(r["start"], int | float) else _ts(r["start"])
            finish = r["finish"] if isinstance(r["finish"], int | float) else _ts(r["finish"])
            if finish < start:
                raise StepTimeError(f"add_steps_bulk: record {i} finishes before it starts")
            data = dict(r.get("data") or {})
            rows.append(
                {
                    "uuid": str(r.get("uuid") or uuid.uuid4()), "kind": r.get("kind", "process"), "name": r["name"],
                    "device": r["device"], "fct": r.get("fct") or data.get("fct"), "params": params_key(data),
                    "data": jsonsafe.dumps(data, compact=False), "start": start, "finish": finish,
                    "duration": finish - start, "status": r.get("status", "completed"), "container_id": None,
                    "experiment_uuid": None, "origin_device": r.get("origin_device"), "origin_pos": None,
                    "target_device": r.get("target_device"), "target_pos": None,
                }
            )
        if not rows:
            return 0
        write, _ = await self._engines()
        names = [c.name for c in steps.columns if c.name != "id"]
        async with write.begin() as conn:
            for name in {r["device"] for r in rows}:
                await self._ensure_device(conn, name)
            # Plain tuples through the driver's executemany: SQLAlchemy's per-row bind processing would
            # cost more than the insert itself at this volume.
            style = conn.dialect.paramstyle
            marks = [f"${i}" for i in range(1, len(names) + 1)] if style == "numeric_dollar" else (
                ["%s"] * len(names) if style == "format" else ["?"] * len(names)
            )
            sql = f"INSERT INTO lab_steps ({', '.join(names)}) VALUES ({', '.join(marks)})"
            await conn.exec_driver_sql(sql, [tuple(r[n] for n in names) for r in rows])
        return len(rows)

    @_on_portal
    async def get_step(self, step_uuid: str) -> StepRecord | None:
        """The step recorded under ``step_uuid``, or ``None``."""
        found = await self._history(steps.c.uuid == str(step_uuid))
        return found[0] if found else None

    @_on_portal
    async def optimize(self) -> None:
        """Refresh the planner statistics after a bulk import (``add_steps_bulk``): ``ANALYZE`` on SQLite,
        ``VACUUM ANALYZE`` of the step table on PostgreSQL, which also marks the pages all-visible so the
        historians' index-only scans skip the table. Autovacuum does the same eventually; call this when
        estimates must be fast right after an import.
        """
        _, read = await self._engines()
        async with read.connect() as conn:  # autocommit: VACUUM refuses to run inside a transaction
            await conn.exec_driver_sql("ANALYZE" if self._sqlite else "VACUUM (ANALYZE) lab_steps")

    # -- estimates --------------------------------------------------------------------------------------
    async def _samples(self, conn: AsyncConnection, q: HistoryQuery) -> list[float]:
        where: list[tuple[str, Any]] = [("kind", q.kind)]
        if q.kind == "move":
            where += [("origin_device", q.origin), ("target_device", q.target)]
        else:
            where.append(("fct", q.fct))
            if q.device is not None:
                where.append(("device", q.device))
            if q.params is not None:
                where.append(("params", q.params))
        # The driver's own one-call query (aiosqlite execute_fetchall: one hop to its thread; asyncpg fetch:
        # one prepared-statement round trip) instead of SQLAlchemy's cursor, execute, fetch and close, each a
        # hop of its own: an estimate's latency is made of these hops, not of the indexed lookup.
        marks = ["?"] * len(where) if self._sqlite else [f"${i}" for i in range(1, len(where) + 1)]
        sql = (
            "SELECT duration FROM lab_steps WHERE duration IS NOT NULL AND "
            + " AND ".join(f"{name} = {mark}" for (name, _), mark in zip(where, marks, strict=True))
            + f" ORDER BY id DESC LIMIT {int(self.settings.history_window)}"
        )
        values = [value for _, value in where]
        driver: Any = (await conn.get_raw_connection()).driver_connection
        rows = await (driver.execute_fetchall(sql, values) if self._sqlite else driver.fetch(sql, *values))
        return [float(r[0]) for r in rows]

    async def _estimate(self, conn: AsyncConnection, step: ProcessStep, confidence: float) -> float | None:
        estimate_from_samples((), HistoryQuery("process"), confidence)  # validates confidence up front
        for q in historians_for(step):
            samples = await self._samples(conn, q)
            if samples:
                return estimate_from_samples(samples, q, confidence)
        return None

    @_on_portal
    async def get_estimated_duration(self, step: ProcessStep, confidence: float = 0.95) -> float | None:
        """Seconds ``step`` is expected to take at ``confidence``, or ``None`` without matching history.
        See ``pywats_lab.estimation`` for the historians and the rule (maximum observed for moves,
        nearest-rank quantile otherwise, over the newest ``history_window`` matching finished steps).

        Raises:
            ValueError: ``confidence`` outside ``(0, 1]``.
        """
        _, read = await self._engines()
        async with read.connect() as conn:
            return await self._estimate(conn, step, confidence)

    @_on_portal
    async def get_estimated_durations(
        self, steps_: Sequence[ProcessStep], confidence: float = 0.95
    ) -> list[float | None]:
        """``get_estimated_duration`` of each step, in order, on one connection.

        Raises:
            ValueError: ``confidence`` outside ``(0, 1]``.
        """
        _, read = await self._engines()
        async with read.connect() as conn:
            return [await self._estimate(conn, s, confidence) for s in steps_]

    # -- history ----------------------------------------------------------------------------------------
    @_on_portal
    async def get_device_statistics(self, device: str) -> DeviceStatistics:
        """Finished steps executed by ``device``: count and min/avg/max duration (seconds)."""
        _, read = await self._engines()
        c = steps.c
        async with read.connect() as conn:
            row = (
                await conn.execute(
                    select(func.count(c.duration), func.min(c.duration), func.avg(c.duration), func.max(c.duration))
                    .where(c.device == device, c.duration.is_not(None))
                )
            ).one()
        return DeviceStatistics(device, int(row[0]), _f(row[1]), _f(row[2]), _f(row[3]))

    @_on_portal
    async def get_experiment_summary(self, experiment_uuid: str) -> ExperimentSummary:
        """Step count and total duration (first start to last finish) of an experiment.

        Raises:
            UnknownExperimentError: no experiment with that UUID.
        """
        _, read = await self._engines()
        c = steps.c
        async with read.connect() as conn:
            exp = (
                await conn.execute(
                    select(processes.c.name).select_from(experiments.join(processes))
                    .where(experiments.c.uuid == str(experiment_uuid))
                )
            ).first()
            if exp is None:
                raise UnknownExperimentError(f"no experiment {experiment_uuid!r} in the status DB")
            row = (
                await conn.execute(
                    select(func.count(c.id), func.min(c.start), func.max(c.finish)).where(
                        c.experiment_uuid == str(experiment_uuid)
                    )
                )
            ).one()
        first, last = _dt(row[1]), _dt(row[2])
        duration = (row[2] - row[1]) if row[1] is not None and row[2] is not None else None
        return ExperimentSummary(str(experiment_uuid), exp.name, int(row[0]), first, last, duration)

    @_on_portal
    async def get_experiment_steps(self, experiment_uuid: str) -> list[StepRecord]:
        """The steps of an experiment in start order."""
        return await self._history(steps.c.experiment_uuid == str(experiment_uuid))

    @_on_portal
    async def get_container_history(self, barcode: str) -> list[StepRecord]:
        """Every step recorded for the container(s) with ``barcode`` (removed ones included), in start order."""
        _, read = await self._engines()
        async with read.connect() as conn:
            ids = list((await conn.execute(select(containers.c.id).where(containers.c.barcode == barcode))).scalars())
        if not ids:
            return []
        return await self._history(steps.c.container_id.in_(ids))

    async def _history(self, where: Any) -> list[StepRecord]:
        _, read = await self._engines()
        query = (
            select(steps, containers.c.barcode)
            .select_from(steps.outerjoin(containers, steps.c.container_id == containers.c.id))
            .where(where)
            .order_by(steps.c.start, steps.c.id)
        )
        async with read.connect() as conn:
            return [_record(r) for r in await conn.execute(query)]

    # -- orders (the orchestrator's durable queue) ------------------------------------------------------
    @_on_portal
    async def save_order(
        self, order_id: str, capabilities: Sequence[str], state: str, module: str | None, seen_running: bool = False
    ) -> None:
        """Insert or update an orchestrator order (``state`` ``pending`` or ``assigned``)."""
        write, _ = await self._engines()
        async with write.begin() as conn:
            found = (await conn.execute(select(orders.c.seq).where(orders.c.order_id == order_id))).first()
            values = {
                "capabilities": json.dumps(list(capabilities)), "state": state, "module": module,
                "seen_running": seen_running,
            }
            if found is None:
                self._seq += 1
                await conn.execute(orders.insert().values(order_id=order_id, seq=self._seq, **values))
            else:
                await conn.execute(orders.update().where(orders.c.order_id == order_id).values(**values))

    @_on_portal
    async def delete_order(self, order_id: str) -> None:
        """Forget an order (completed)."""
        write, _ = await self._engines()
        async with write.begin() as conn:
            await conn.execute(orders.delete().where(orders.c.order_id == order_id))

    @_on_portal
    async def load_orders(self) -> list[tuple[str, list[str], str, str | None, bool]]:
        """Every order as ``(order_id, capabilities, state, module, seen_running)`` in arrival order."""
        _, read = await self._engines()
        async with read.connect() as conn:
            rows = await conn.execute(select(orders).order_by(orders.c.seq))
            return [(r.order_id, json.loads(r.capabilities), r.state, r.module, bool(r.seen_running)) for r in rows]

    @_on_portal
    async def ping(self) -> None:
        """Open the database (creating the tables) and run ``SELECT 1``.

        Raises:
            StatusDBError: the database cannot be opened.
        """
        _, read = await self._engines()
        async with read.connect() as conn:
            await conn.execute(text("SELECT 1"))


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


def _container(row: Any) -> ContainerInfo:
    return ContainerInfo(
        name=row.name, current_device=row.device, current_pos=int(row.pos), barcode=row.barcode,
        lidded=bool(row.lidded), filled=bool(row.filled), start_device=row.start_device,
        start_pos=int(row.start_pos), removed=bool(row.removed),
    )


def _record(row: Any) -> StepRecord:
    start = _dt(row.start)
    assert start is not None
    return StepRecord(
        uuid=row.uuid, kind=row.kind, name=row.name, device=row.device, fct=row.fct, data=json.loads(row.data),
        status=row.status, start=start, finish=_dt(row.finish), duration=_f(row.duration), barcode=row.barcode,
        experiment_uuid=row.experiment_uuid, origin_device=row.origin_device, origin_pos=row.origin_pos,
        target_device=row.target_device, target_pos=row.target_pos,
    )


def _step_values(step: ProcessStep) -> dict[str, Any]:
    if step.start is None:
        raise StepTimeError(f"step {step.name!r}: start is not set (set step.start before recording it)")
    start = _ts(step.start)
    finish = None if step.finish is None else _ts(step.finish)
    if finish is not None and finish < start:
        raise StepTimeError(
            f"step {step.name!r}: finish {step.finish.isoformat()} is before start {step.start.isoformat()}"  # type: ignore[union-attr]
        )
    data = dict(step.data or {})
    move = isinstance(step, MoveStep)
    return {
        "uuid": str(step.uuid), "kind": "move" if move else "process", "name": step.name,
        "device": step.main_device.name, "fct": step.fct, "params": params_key(data),
        "data": jsonsafe.dumps(data, compact=False), "start": start, "finish": finish,
        "duration": None if finish is None else finish - start, "status": step.status or "",
        "origin_device": step.origin_device.name if move and step.origin_device else None,  # type: ignore[attr-defined]
        "origin_pos": step.origin_pos if move else None,  # type: ignore[attr-defined]
        "target_device": step.target_device.name if move and step.target_device else None,  # type: ignore[attr-defined]
        "target_pos": step.destination_pos if move else None,  # type: ignore[attr-defined]
    }


class StatusDBImplementation:
    """The LARA status DB with the document's synchronous calls; ``aio`` has the same calls as coroutines.

    Args:
        db_url: SQLAlchemy URL (``sqlite:///lab.db``, ``postgresql://user@host/db``) or a SQLite file path;
            default ``PYWATS_LAB_DB``, else ``sqlite:///pywats-lab.db``.
        config_file: the lab configuration file (devices and positions); default ``PYWATS_LAB_CONFIG_FILE``.
        strict_devices: refuse devices/positions the configuration does not list.
        history_window: newest matching steps an estimate looks at (count).

    Raises:
        LabConfigError: an invalid setting or configuration file.
        StatusDBError (from the calls): the database cannot be opened or failed.
    """

    def __init__(
        self,
        db_url: str | None = None,
        *,
        config_file: str | Path | None = None,
        strict_devices: bool | None = None,
        history_window: int | None = None,
    ) -> None:
        self.settings = LabSettings.load(
            db=db_url, config_file=config_file, strict_devices=strict_devices, history_window=history_window
        )
        self._portal = _Portal()
        try:
            self.aio = AsyncStatusDB(self.settings, self._portal)
        except BaseException:
            self._portal.stop()
            raise
        self._closed = False

    def __repr__(self) -> str:
        return f"StatusDBImplementation({self.aio._safe_url()!r})"

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise StatusDBError("the status DB is closed")
        return self._portal.run(coro)

    def close(self) -> None:
        """Close the connection pools and stop the worker thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._portal.run(self.aio.dispose())
        finally:
            self._portal.stop()

    async def aclose(self) -> None:
        """``close`` from async code (without blocking the calling loop)."""
        if self._closed:
            return
        await self.aio.dispose()
        self._closed = True
        await asyncio.to_thread(self._portal.stop)

    def __enter__(self) -> StatusDBImplementation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # A forgotten database must not keep a thread and a loop alive; the daemon thread dies with the
        # process anyway, so a failure here is not worth reporting.
        try:
            if not getattr(self, "_closed", True):
                self._closed = True
                self._portal.stop()
        except Exception:
            pass

    # The document's calls; each is the ``aio`` coroutine run to completion (see there for Raises).
    def add_process_to_db(self, name: str, src: str) -> str:
        """Store a process; returns its UUID. Raises ``ValueError`` for an empty name."""
        return self._run(self.aio.add_process_to_db(name, src))

    def get_available_processes(self) -> list[tuple[str, str]]:
        """Every process as ``(name, uuid)``."""
        return self._run(self.aio.get_available_processes())

    def get_process(self, process_uuid: str) -> str:
        """The process source. Raises ``UnknownProcessError``."""
        return self._run(self.aio.get_process(process_uuid))

    def create_experiment(self, process_uuid: str) -> str:
        """A new experiment of the process; returns its UUID. Raises ``UnknownProcessError``."""
        return self._run(self.aio.create_experiment(process_uuid))

    def get_experiments(self, process_uuid: str | None = None) -> list[str]:
        """Experiment UUIDs (of one process, or all), oldest first."""
        return self._run(self.aio.get_experiments(process_uuid))

    def add_container(self, container_info: ContainerInfo) -> ContainerInfo:
        """Put a container on the platform. Raises ``DuplicateContainerError``, ``PositionOccupiedError``."""
        return self._run(self.aio.add_container(container_info))

    def get_cont_info_by_barcode(self, barcode: str) -> ContainerInfo | None:
        """The container with ``barcode`` on the platform, or ``None``."""
        return self._run(self.aio.get_cont_info_by_barcode(barcode))

    def get_containers(self) -> list[ContainerInfo]:
        """Every container on the platform."""
        return self._run(self.aio.get_containers())

    def moved_container(
        self, source_device: str, source_pos: int, target_device: str, target_pos: int, barcode: str
    ) -> ContainerInfo:
        """Record a move. Raises ``UnknownContainerError``, ``ContainerNotAtPositionError``,
        ``PositionOccupiedError``."""
        return self._run(self.aio.moved_container(source_device, source_pos, target_device, target_pos, barcode))

    def record_move(self, step: MoveStep, barcode: str, experiment_uuid: str | None = None) -> ContainerInfo:
        """``moved_container`` plus ``safe_step_to_db`` of the move step, in one transaction."""
        return self._run(self.aio.record_move(step, barcode, experiment_uuid))

    def remove_container(self, barcode: str) -> None:
        """The container left the platform. Raises ``UnknownContainerError``."""
        self._run(self.aio.remove_container(barcode))

    def safe_step_to_db(
        self, step: ProcessStep, container_info: ContainerInfo | None = None, experiment_uuid: str | None = None
    ) -> str:
        """Record a step. Raises ``StepTimeError``, ``UnknownContainerError``, ``UnknownExperimentError``."""
        return self._run(self.aio.safe_step_to_db(step, container_info, experiment_uuid))

    def get_all_positions(self, device: str) -> list[int]:
        """Slot numbers of ``device``."""
        return self._run(self.aio.get_all_positions(device))

    def get_devices(self) -> list[DeviceInfo]:
        """Every known device."""
        return self._run(self.aio.get_devices())

    def position_empty(self, device: str, pos: int) -> bool:
        """True when no container is at ``device``/``pos``."""
        return self._run(self.aio.position_empty(device, pos))

    def get_container_at_position(self, device: str, pos: int) -> ContainerInfo | None:
        """The container at ``device``/``pos``, or ``None``."""
        return self._run(self.aio.get_container_at_position(device, pos))

    def get_estimated_duration(self, step: ProcessStep, confidence: float = 0.95) -> float | None:
        """Seconds at ``confidence``, or ``None`` (see ``pywats_lab.estimation``). Raises ``ValueError``."""
        return self._run(self.aio.get_estimated_duration(step, confidence))

    def get_estimated_durations(self, steps: Sequence[ProcessStep], confidence: float = 0.95) -> list[float | None]:
        """``get_estimated_duration`` of each step."""
        return self._run(self.aio.get_estimated_durations(steps, confidence))

    def get_device_statistics(self, device: str) -> DeviceStatistics:
        """Count and min/avg/max duration of the device's finished steps."""
        return self._run(self.aio.get_device_statistics(device))

    def get_experiment_summary(self, experiment_uuid: str) -> ExperimentSummary:
        """Step count and total duration of an experiment. Raises ``UnknownExperimentError``."""
        return self._run(self.aio.get_experiment_summary(experiment_uuid))

    def get_experiment_steps(self, experiment_uuid: str) -> list[StepRecord]:
        """The experiment's steps in start order."""
        return self._run(self.aio.get_experiment_steps(experiment_uuid))

    def get_container_history(self, barcode: str) -> list[StepRecord]:
        """The container's steps in start order."""
        return self._run(self.aio.get_container_history(barcode))

    def optimize(self) -> None:
        """Refresh planner statistics after a bulk import (see ``AsyncStatusDB.optimize``)."""
        self._run(self.aio.optimize())

    def add_steps_bulk(self, records: Sequence[dict[str, Any]]) -> int:
        """Insert many finished steps (see ``AsyncStatusDB.add_steps_bulk``)."""
        return self._run(self.aio.add_steps_bulk(records))
