"""Durable memory: every card shown (or suppressed), and every piece of feedback on it.

SQLAlchemy Core over an embedded SQLite file by default (a rollback journal, no memory maps: several
gunicorn workers write it in turn, and no file fault can end a worker) or PostgreSQL by URL for
deployments with several instances. The schema is versioned by
a small honest mechanism: a `schema_version` table and an ordered list of migrations, applied on start.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    and_,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError, SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from cds_service import metrics
from cds_service.cds_hooks.limits import ID_MAX, LOCAL_CALLER, URI_MAX, UUID_MAX, fitted_key
from cds_service.errors import StorageUnavailable
from cds_service.storage.card_log_writer import CardLogWriter
from cds_service.storage.dbapi_statement import CompiledStatement, dbapi_session

log = logging.getLogger(__name__)

metadata = MetaData()

cards = Table(
    "card_log",
    metadata,
    Column("uuid", String(64), primary_key=True),
    Column("service_id", String(64), nullable=False),
    Column("hook", String(32), nullable=False),
    Column("hook_instance", String(ID_MAX), nullable=False),
    # Indexed only where a query needs it: every index is paid for on the per-call insert.
    Column("rule", String(64), nullable=False),
    Column("indicator", String(16), nullable=False),
    Column("patient_id", String(ID_MAX), nullable=False),
    Column("encounter_id", String(ID_MAX), index=True),
    # The calling EHR (issuer|tenant, or "local"): every read is scoped by it (v4).
    Column("caller", String(URI_MAX), nullable=False, server_default=LOCAL_CALLER),
    Column("target_ref", String(256)),
    Column("target_fingerprint", String(64)),
    Column("evidence", JSON, nullable=False),
    Column("suppressed_because", String(256)),  # null: shown; else why it was held back
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String(64), nullable=False),
    Column("card_uuid", String(UUID_MAX), nullable=False, index=True),
    Column("known_card", Boolean, nullable=False),
    # Copied from the card log when the card is known, so that the per-call memory lookup reads this small
    # table alone; joining the card log made every call slower as a patient's card history grew.
    Column("patient_id", String(ID_MAX), index=True),
    Column("caller", String(URI_MAX), nullable=False, server_default=LOCAL_CALLER),
    Column("rule", String(64)),
    # What the card was about (memory.fingerprint): an override holds back that finding on that target only.
    Column("target_fingerprint", String(64)),
    Column("outcome", String(16), nullable=False),
    Column("accepted_suggestions", JSON),
    Column("reason_system", String(URI_MAX)),
    Column("reason_code", String(ID_MAX)),
    Column("user_comment", Text),
    Column("outcome_timestamp", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, index=True),
)

# The memory of one encounter, kept compact: one row per (rule, target, fingerprint) shown, and whether it was
# answered. Maintained when cards are logged and when feedback arrives, so the per-call read is bounded by the
# distinct cards of the encounter, not by how many times they were logged (issue 17: cost per call that grew
# with each call on the same encounter).
encounter_memory = Table(
    "encounter_memory",
    metadata,
    Column("caller", String(URI_MAX), nullable=False),
    Column("encounter_id", String(ID_MAX), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("target_ref", String(256), nullable=False),  # "" when the card has no target
    Column("target_fingerprint", String(64), nullable=False),
    Column("answered", Boolean, nullable=False, default=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("caller", "encounter_id", "rule", "target_ref", "target_fingerprint"),
)

MEMORY_KEYS = ("caller", "encounter_id", "rule", "target_ref", "target_fingerprint")

schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

# Every lumbar imaging order the order hooks saw, with who ordered it (context.userId) and whether the record
# showed a red flag: what the clinician report cards count. One row per order per call; the report counts each
# order (patient and clinical content) once per clinician. No patient appears in the report itself.
imaging_orders = Table(
    "imaging_orders",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("caller", String(URI_MAX), nullable=False),
    Column("user_id", String(URI_MAX)),
    Column("service_id", String(64), nullable=False),
    Column("hook", String(32), nullable=False),
    Column("patient_id", String(ID_MAX), nullable=False),
    Column("order_fingerprint", String(64), nullable=False),
    Column("red_flag", Boolean, nullable=False),
    Column("card_uuid", String(64)),  # the imaging card shown about it (none with a red flag, or held back)
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
)

# Accepted JWT ids until their token expires: the replay guard shared by every instance when the database is
# PostgreSQL (trust.ReplayGuard keeps them in a local SQLite file otherwise).
seen_jti = Table(
    "seen_jti",
    metadata,
    Column("iss", String(URI_MAX), nullable=False),
    Column("jti", String(URI_MAX), nullable=False),
    Column("expires", Float, nullable=False, index=True),
    PrimaryKeyConstraint("iss", "jti"),
)

# The statements every hook call runs: built once, compiled once per engine (Store._hot) and run on the DB-API
# connection (dbapi_statement.py); building a select() per call cost several times what SQLite takes to answer.
OVERRIDES_SINCE = select(feedback.c.rule, feedback.c.reason_code, feedback.c.target_fingerprint).where(
    feedback.c.caller == bindparam("caller"),
    feedback.c.patient_id == bindparam("patient_id"),
    feedback.c.outcome == "overridden",
    feedback.c.reason_code.is_not(None),
    feedback.c.outcome_timestamp >= bindparam("since"),
)
ENCOUNTER_HISTORY = select(
    encounter_memory.c.rule,
    encounter_memory.c.target_ref,
    encounter_memory.c.target_fingerprint,
    encounter_memory.c.answered,
).where(encounter_memory.c.caller == bindparam("caller"), encounter_memory.c.encounter_id == bindparam("encounter_id"))
INSERT_CARDS = insert(cards)
# Every column but the generated id, by name: compiled once, the DB-API row needs each of them.
INSERT_IMAGING_ORDERS = insert(imaging_orders).values(
    {c.name: bindparam(c.name) for c in imaging_orders.columns if c.name != "id"}
)


def _insert_ignore(table: Table, dialect: str) -> Any:
    """INSERT that leaves an existing row alone (a card logged again on the same encounter)."""
    return (postgresql_insert if dialect == "postgresql" else sqlite_insert)(table).on_conflict_do_nothing()


@dataclass(frozen=True)
class HotStatements:
    overrides_since: CompiledStatement
    encounter_history: CompiledStatement
    insert_cards: CompiledStatement
    remember_encounter: CompiledStatement
    insert_imaging_orders: CompiledStatement

    @classmethod
    def compile(cls, engine: Engine) -> HotStatements:
        return cls(
            CompiledStatement(OVERRIDES_SINCE, engine),
            CompiledStatement(ENCOUNTER_HISTORY, engine),
            CompiledStatement(INSERT_CARDS, engine),
            CompiledStatement(_insert_ignore(encounter_memory, engine.dialect.name), engine),
            CompiledStatement(INSERT_IMAGING_ORDERS, engine),
        )


def _columns(conn: Any, table: str) -> set[str]:
    return {c["name"] for c in inspect(conn).get_columns(table)}


def _add_column(conn: Any, table: str, column: str, type_sql: str) -> None:
    if column not in _columns(conn, table):
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {type_sql}"))


def _fill_encounter_memory(conn: Any) -> None:
    caller = "caller, " if "caller" in _columns(conn, "encounter_memory") else ""
    value = f"'{LOCAL_CALLER}', " if caller else ""
    conn.execute(
        text(
            f"INSERT INTO encounter_memory ({caller}encounter_id, rule, target_ref, target_fingerprint, answered, "
            f"updated_at) SELECT {value}c.encounter_id, c.rule, COALESCE(c.target_ref, ''), "
            "COALESCE(c.target_fingerprint, ''), MAX(CASE WHEN f.card_uuid IS NULL THEN 0 ELSE 1 END) = 1, "
            "MAX(c.created_at) FROM card_log c LEFT JOIN feedback f ON f.card_uuid = c.uuid "
            "WHERE c.encounter_id IS NOT NULL AND c.suppressed_because IS NULL "
            "GROUP BY c.encounter_id, c.rule, COALESCE(c.target_ref, ''), COALESCE(c.target_fingerprint, '')"
        )
    )


def _add_caller(conn: Any) -> None:
    for table in ("card_log", "feedback"):
        _add_column(conn, table, "caller", f"VARCHAR({URI_MAX}) NOT NULL DEFAULT '{LOCAL_CALLER}'")
    if "caller" in _columns(conn, "encounter_memory"):
        return  # made by create_all in its newest shape during this upgrade
    conn.execute(text("ALTER TABLE encounter_memory RENAME TO encounter_memory_v3"))
    if conn.dialect.name == "postgresql":  # the old primary key's name would clash with the new table's
        conn.execute(text("ALTER TABLE encounter_memory_v3 DROP CONSTRAINT IF EXISTS encounter_memory_pkey"))
    encounter_memory.create(conn)
    conn.execute(
        text(
            "INSERT INTO encounter_memory (caller, encounter_id, rule, target_ref, target_fingerprint, answered, "
            f"updated_at) SELECT '{LOCAL_CALLER}', encounter_id, rule, target_ref, target_fingerprint, answered, "
            "updated_at FROM encounter_memory_v3"
        )
    )
    conn.execute(text("DROP TABLE encounter_memory_v3"))


# Each migration takes the schema from version i to i+1; append, never change what one does. Steps look at the
# columns before adding them: pysqlite runs DDL outside the transaction, so a retried upgrade may find one done.
MIGRATIONS: list[Sequence[str] | Callable[[Any], None] | None] = [
    None,  # v1: the tables above, created with create_all
    # v2: overrides are remembered per target (the order and dose), not per rule and patient. Feedback stored
    # before v2 has no fingerprint and so holds back nothing: the safe direction.
    lambda conn: _add_column(conn, "feedback", "target_fingerprint", "VARCHAR(64)"),
    # v3: the compact encounter memory (created by create_all), filled from what v2 logged. create_all makes the
    # table in its newest shape, so the fill names the caller column when that shape has one (v4).
    _fill_encounter_memory,
    # v4: every record carries the calling EHR; records made before are the local identity's. The encounter
    # memory (derived data) is rebuilt with the caller in its key.
    _add_caller,
]


@dataclass(frozen=True)
class CardRecord:
    uuid: str
    service_id: str
    hook: str
    hook_instance: str
    rule: str
    indicator: str
    patient_id: str
    encounter_id: str | None
    target_ref: str | None
    target_fingerprint: str | None
    evidence: tuple[str, ...]
    suppressed_because: str | None = None
    caller: str = LOCAL_CALLER


@dataclass(frozen=True)
class ImagingOrderRecord:
    caller: str
    user_id: str | None
    service_id: str
    hook: str
    patient_id: str
    order_fingerprint: str
    red_flag: bool
    card_uuid: str | None


@dataclass(frozen=True)
class EncounterHistory:
    shown_rules: frozenset[str]
    answered: frozenset[tuple[str, str | None, str | None]]  # (rule, target ref, order fingerprint)


@dataclass(frozen=True)
class FeedbackRecord:
    card_uuid: str
    outcome: str
    accepted_suggestions: tuple[str, ...]
    reason_system: str | None
    reason_code: str | None
    user_comment: str | None
    outcome_timestamp: datetime


# SQLite without shared memory maps. WAL mode maps its `-shm` file into every process: when anything outside
# truncates that file, the next access is a SIGBUS that kills the worker and every call in flight. A rollback
# journal (TRUNCATE: the journal is emptied, not deleted, after each commit) and no memory-mapped I/O leave
# only file reads and writes, whose faults are errors the store catches (degraded answers, not a signal). The
# price is a disk flush per commit (about 0.3 ms CPU and 0.7 ms in all on this machine; `make bench` shows it).
SQLITE_CONNECTION_PRAGMAS = (
    "PRAGMA journal_mode=TRUNCATE",
    # Syncs at the moments that keep the file whole; SQLite's documentation leaves "a very small chance" of
    # corruption by a power cut only on older file systems. FULL costs another 0.2 ms per commit here.
    "PRAGMA synchronous=NORMAL",
    "PRAGMA mmap_size=0",  # also where a build maps the database file by default
)


def sqlite_pragmas(dbapi_connection: Any, busy_timeout_s: float) -> None:
    """Set a new SQLite connection up as SQLITE_CONNECTION_PRAGMAS says; a file a WAL-mode version left is
    switched back (that needs the file to itself: "database is locked" otherwise, which migrate retries)."""
    cursor = dbapi_connection.cursor()
    # First: leaving WAL below may have to wait for a lock; bounded like every other wait.
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
    for pragma in SQLITE_CONNECTION_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    sqlite_pragmas(dbapi_connection, LOCK_WAIT_S)


# How long a write may wait for another writer's lock: short, so that a lock held elsewhere costs one call a
# bounded delay (and a logged failure), never the EHR's patience.
LOCK_WAIT_S = 2.0
# A failed write marks the store degraded for this long: /readyz says so, the cards still go out.
DEGRADED_FOR_S = 60.0
# SQLite's words for SQLITE_CORRUPT and SQLITE_NOTADB: the file's contents are broken, not only locked or gone.
SQLITE_CORRUPT_SIGNS = ("database disk image is malformed", "file is not a database")


def _sqlite_file(url: str) -> str | None:
    """The path of an SQLite URL's database file; None for an in-memory database or another server."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") or "mode=memory" in database:
        return None
    return database.removeprefix("file:").split("?", 1)[0]


def _file_identity(path: str | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        found = os.stat(path)
    except OSError:
        return (0, 0)  # gone
    return (found.st_dev, found.st_ino)


def _monday(moment: datetime) -> date:
    day = _utc(moment).date()
    return day - timedelta(days=day.weekday())


def _weekly_orders(orders: Iterable[dict[str, Any]], start: datetime, end: datetime) -> list[dict[str, Any]]:
    """A clinician's trend: per week (Monday to Sunday, as `report --by week`) of the period, every week
    listed even when empty, the imaging orders first seen that week and how many had no red flag."""
    weeks: dict[date, list[int]] = {}
    week, last_day = (
        _monday(start),
        (_utc(end) - timedelta(microseconds=1)).date(),
    )  # an end at midnight: the day before
    while week <= last_day:
        weeks[week] = [0, 0]
        week += timedelta(days=7)
    for order in orders:
        counts = weeks.setdefault(_monday(order["first"]), [0, 0])
        counts[0] += 1
        counts[1] += not order["red_flag"]
    return [{"week": w.isoformat(), "imaging_orders": n, "without_red_flag": m} for w, (n, m) in sorted(weeks.items())]


def _median(values: Sequence[float]) -> float:
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else round((values[middle - 1] + values[middle]) / 2, 3)


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC); PostgreSQL aware ones: compare them as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# JSON columns (the card log's evidence) written and read with orjson: the standard library's encoder was
# the costliest step of logging a card.
_JSON_CODEC: dict[str, Any] = {
    "json_serializer": lambda value: orjson.dumps(value).decode(),
    "json_deserializer": orjson.loads,
}


# How long feedback waits for a card not yet in the log (another worker's queue writes it within milliseconds; a
# card that is truly unknown costs its feedback this much).
FEEDBACK_CARD_WAIT_S = 0.5
# A report waits for the other workers' card log too: their linger window and this much more for the commit.
# Best effort: the other workers' queues cannot be seen from here; an entry whose commit takes longer is in
# the next report.
REPORT_SETTLE_S = 0.05
CONNECT_TIMEOUT_S = 2  # PostgreSQL: seconds to wait for a connection (libpq connect_timeout)
SCHEMA_RETRY_S = 5.0  # after a start with the database down: how often a call may try to make the schema


CardLogEntry = tuple[list[CardRecord], datetime, Sequence[ImagingOrderRecord]]  # one call's log


class Store:
    def __init__(
        self, url: str, *, wait_s: float = 0.0, background_card_log: bool = False, card_log_linger_s: float = 0.0
    ) -> None:
        """`background_card_log`: the hook calls' card log is written by this process's writer thread in
        batches (storage/card_log_writer.py), off the request path, each batch gathered for up to
        `card_log_linger_s`; otherwise each call writes its own."""
        self.url = url
        self.write_failures = 0
        self._last_failure: float | None = None
        # SQLite has one writer at a time, and a writer that finds the file locked polls it, sleeping up to
        # 100 ms between tries: with 8 threads per worker writing at once, those sleeps put the p99 of a
        # hook call at 300-600 ms (make bench, 16 connections). The threads of a process therefore queue
        # for the write here, in order and without sleeping; only the other processes contend for the file.
        self._write_turn: AbstractContextManager[Any] = nullcontext()
        if url.startswith("sqlite"):
            self.engine: Engine = create_engine(url, connect_args={"timeout": LOCK_WAIT_S}, **_JSON_CODEC)
            event.listen(self.engine, "connect", _sqlite_pragmas)
            self._write_turn = threading.Lock()
        else:
            # A database that does not answer must not hold a hook call past its deadline: connect within 2 s.
            self.engine = create_engine(
                url,
                pool_pre_ping=True,
                pool_size=5,
                max_overflow=5,
                connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
                **_JSON_CODEC,
            )
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self._set_aside_lock = threading.Lock()
        self._next_schema_try = 0.0
        # An SQLite file deleted or replaced under a running worker: its open connections would go on writing
        # to the old, unlinked file (lost with the process). Each call compares the path's identity (one stat)
        # with the file the schema was made in, and starts a new file when they differ. A new file that got the
        # old one's inode number back looks the same; it is empty, and "no such table" remakes the schema.
        self._sqlite_path = _sqlite_file(url)
        self._file_made: tuple[int, int] | None = None
        if not url.startswith("sqlite") and not self._wait_for_server(wait_s):
            # Advice never waits on storage: an instance whose PostgreSQL is down starts degraded and creates
            # or upgrades the schema at the first call after the server is back (_ready).
            self.failed("start-up", ConnectionError("the database did not accept a connection"))
        else:
            self.migrate()
            self._schema_made()
        self._hot = HotStatements.compile(self.engine)
        self._card_log: CardLogWriter[CardLogEntry] | None = None
        if background_card_log:
            self._card_log = CardLogWriter(
                self._write_card_log,
                lambda exc: self.failed("card log", exc),
                name="card-log-writer",
                linger_s=card_log_linger_s,
            )

    def flush(self, timeout_s: float = 30.0) -> None:
        """Every card log entry queued so far is in the database (or has failed): before a read that must see
        them (feedback matching its card, the reports, the readiness check). A write is bounded (the lock wait,
        the connect timeout), so the wait is too."""
        if self._card_log is not None and not self._card_log.flush(timeout_s):
            log.error("the card log writer did not finish in time")

    def _settle(self) -> None:
        """Before a report: this worker's queue written, and the other workers' linger windows over (their
        calls answered before the report was asked are then written too, REPORT_SETTLE_S)."""
        self.flush()
        if self._card_log is not None and self._card_log.linger_s > 0:
            time.sleep(self._card_log.linger_s + REPORT_SETTLE_S)

    def close(self) -> None:
        """Write out what is queued, then close the connections."""
        if self._card_log is not None:
            self._card_log.close()
        self.engine.dispose()

    def _schema_made(self) -> None:
        self._file_made = _file_identity(self._sqlite_path)
        self._schema_ready = True

    def _file_replaced(self) -> bool:
        if self._file_made is None or _file_identity(self._sqlite_path) == self._file_made:
            return False
        log.error("the SQLite file was deleted or replaced under the service: starting a new one")
        self.failed("file check", FileNotFoundError(self._sqlite_path))
        self._start_new_file()
        return True

    def _start_new_file(self) -> None:
        """The next call makes the schema in whatever file is now at the path (a new one)."""
        self.engine.dispose()  # connections to the old file must not be used again
        self._schema_ready = False
        self._next_schema_try = 0.0

    def _ready(self) -> None:
        """The schema exists: made at start-up or, after a start while the database was down, at the first
        call once it answers again (tried at most every SCHEMA_RETRY_S; until then a storage error)."""
        if self._schema_ready and not self._file_replaced():
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            now = time.monotonic()
            if now < self._next_schema_try:
                raise OperationalError("schema", None, ConnectionError("the database has not answered yet"))
            self._next_schema_try = now + SCHEMA_RETRY_S
            self.migrate()
            self._schema_made()
            log.warning("the database answers again: schema ready")

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """One write transaction (on SQLite, this process's turn to write)."""
        with self._write_turn, self.engine.begin() as conn:
            yield conn

    def _wait_for_server(self, wait_s: float) -> bool:
        """Instances started together with their database (compose, an orchestrator) come up before it accepts
        connections: wait for it up to ``wait_s``; False when it still does not answer (start degraded)."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                with self.engine.connect():
                    return True
            except OperationalError as exc:
                if time.monotonic() >= deadline:
                    log.error("the database did not accept a connection within %.0f s: starting degraded", wait_s)
                    return False
                log.warning("waiting for the database (%s)", type(exc.orig).__name__)
                time.sleep(0.5)

    def migrate(self, attempts: int = 10) -> None:
        """Create or upgrade the schema. Every gunicorn worker does this at start, at the same moment:
        PostgreSQL serialises them with an advisory lock; SQLite (whose DDL pysqlite does not wrap in a
        transaction) may see a table appear between check and create, or find the new file locked while
        another worker switches its journal mode: both are retried."""
        for attempt in range(attempts):
            try:
                self._migrate_once()
                return
            except (OperationalError, ProgrammingError, IntegrityError) as exc:
                message = str(exc).lower()
                if not any(m in message for m in ("already exists", "duplicate", "database is locked")):
                    raise
                if attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def _migrate_once(self) -> None:
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(7314)"))  # held until this transaction ends
            metadata.create_all(conn)
            current = conn.execute(select(func.max(schema_version.c.version))).scalar()
            if current is None:
                conn.execute(insert(schema_version).values(version=len(MIGRATIONS)))
                return
            for version in range(current, len(MIGRATIONS)):
                step = MIGRATIONS[version]
                if callable(step):
                    step(conn)
                    continue
                for statement in step or ():
                    conn.execute(text(statement))
            if current < len(MIGRATIONS):
                conn.execute(schema_version.update().values(version=len(MIGRATIONS)))

    # --- health -------------------------------------------------------------------------------------

    def failed(self, what: str, exc: Exception) -> None:
        """Count and log a storage failure (type only: messages can hold row values)."""
        self.write_failures += 1
        self._last_failure = time.monotonic()
        metrics.STORAGE_FAILURES.labels(what).inc()
        metrics.STORAGE_DEGRADED.set(1)
        log.error("storage failure", extra={"operation": what, "error": type(exc).__name__})
        message = str(exc).lower()
        if "no such table" in message:  # the file emptied from outside: make the schema again (_ready)
            self._schema_ready = False
        elif self._sqlite_path is not None and any(sign in message for sign in SQLITE_CORRUPT_SIGNS):
            self._set_aside_corrupt_file()

    def _set_aside_corrupt_file(self) -> None:
        """An SQLite file broken from outside (truncated or overwritten during a commit): every later write would
        fail on it. It is renamed aside with its journal, kept for whoever wants to recover what it holds, and
        the next call starts a new file. Only the file this store made is set aside: one another worker has
        already put in its place is the new one (the next call moves to it, _file_replaced)."""
        path = self._sqlite_path
        assert path is not None
        with self._set_aside_lock:
            if self._file_made is None or _file_identity(path) != self._file_made:
                return
            aside = f"{path}.malformed-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}"
            for suffix in ("", "-journal"):  # a hot journal left at the path would be played into the new file
                try:
                    os.replace(path + suffix, aside + suffix)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    log.error("the malformed SQLite file could not be set aside", extra={"error": type(exc).__name__})
                    return
            log.error("the SQLite file is malformed: set aside, starting a new one", extra={"kept_as": aside})
            self._start_new_file()

    @property
    def degraded(self) -> bool:
        return self._last_failure is not None and time.monotonic() - self._last_failure < DEGRADED_FOR_S

    def readable(self) -> bool:
        try:
            self._ready()
            with self.engine.connect() as conn:
                conn.execute(select(schema_version.c.version))  # the schema, not only the file, is there
        except SQLAlchemyError as exc:
            self.failed("read check", exc)
            return False
        return True

    # --- writing ------------------------------------------------------------------------------------

    def log_cards(
        self, records: Iterable[CardRecord], now: datetime, imaging: Sequence[ImagingOrderRecord] = ()
    ) -> None:
        """The call's cards (shown and held back) and the lumbar imaging orders it saw, in one transaction; with
        the background writer, queued for the next batch (a failure is then reported by the writer)."""
        records = list(records)
        if not records and not imaging:
            return
        if self._card_log is not None:
            self._card_log.submit((records, now, imaging))
            return
        self._write_card_log([(records, now, imaging)])

    def _write_card_log(self, entries: Sequence[CardLogEntry]) -> None:
        """Several calls' log entries in one transaction."""
        self._ready()
        rows: list[dict[str, Any]] = []
        memory: dict[tuple[str, str, str, str, str], datetime] = {}  # the encounter memory key: first seen
        orders: list[dict[str, Any]] = []
        for records, now, imaging in entries:
            rows += [{**r.__dict__, "evidence": list(r.evidence), "created_at": now} for r in records]
            for r in records:
                if r.encounter_id and r.suppressed_because is None:
                    key = (r.caller, r.encounter_id, r.rule, r.target_ref or "", r.target_fingerprint or "")
                    memory.setdefault(key, now)
            orders += [{**o.__dict__, "created_at": now} for o in imaging]
        remembered = [
            dict(zip(MEMORY_KEYS, key, strict=True)) | {"answered": False, "updated_at": memory[key]}
            for key in sorted(memory)
        ]
        with self._write_turn, dbapi_session(self.engine, commit=True) as session:
            if rows:
                session.execute_many(self._hot.insert_cards, rows)
            if remembered:
                session.execute_many(self._hot.remember_encounter, remembered)
            if orders:
                session.execute_many(self._hot.insert_imaging_orders, orders)
        if self._last_failure is not None and not self.degraded:
            metrics.STORAGE_DEGRADED.set(0)  # written again after the minute: this worker has recovered
            self._last_failure = None

    def add_feedback(
        self, service_id: str, items: Sequence[FeedbackRecord], now: datetime, caller: str = LOCAL_CALLER
    ) -> list[bool]:
        """Store every item in one transaction before answering; returns, per item, whether its card is known.
        A card is known only to the EHR it was shown to: another caller's answer to it is stored as unknown."""
        self.flush()  # a card still queued for the log is matched
        self._ready()
        uuids = {i.card_uuid for i in items}
        if self._card_log is not None:
            self._await_cards(uuids, caller)
        with self._writing() as conn:
            # One read of the answered cards: their patient, rule and target for the feedback rows, and their
            # encounter for the compact encounter memory.
            query = select(
                cards.c.uuid,
                cards.c.patient_id,
                cards.c.rule,
                cards.c.target_fingerprint,
                cards.c.encounter_id,
                cards.c.target_ref,
            ).where(cards.c.uuid.in_(uuids), cards.c.caller == caller)
            known = {row.uuid: row for row in conn.execute(query)}
            # Idempotent: an EHR that retries after a dropped connection sends the same answer again (same
            # card, outcome and outcomeTimestamp); it is stored once.
            stored = conn.execute(
                select(feedback.c.card_uuid, feedback.c.outcome, feedback.c.outcome_timestamp).where(
                    feedback.c.card_uuid.in_(uuids), feedback.c.caller == caller
                )
            )
            seen = {(r.card_uuid, r.outcome, _utc(r.outcome_timestamp)) for r in stored}
            fresh = []
            for item in items:
                key = (item.card_uuid, item.outcome, _utc(item.outcome_timestamp))
                if key not in seen:
                    seen.add(key)
                    fresh.append(item)
            rows = [
                {
                    "service_id": service_id,
                    "caller": caller,
                    "card_uuid": i.card_uuid,
                    "known_card": i.card_uuid in known,
                    "patient_id": card.patient_id if (card := known.get(i.card_uuid)) else None,
                    "rule": card.rule if card else None,
                    "target_fingerprint": card.target_fingerprint if card else None,
                    "outcome": i.outcome,
                    "accepted_suggestions": list(i.accepted_suggestions) or None,
                    "reason_system": i.reason_system,
                    "reason_code": i.reason_code,
                    "user_comment": i.user_comment,
                    "outcome_timestamp": i.outcome_timestamp,
                    "received_at": now,
                }
                for i in fresh
            ]
            if rows:
                conn.execute(insert(feedback), rows)
            for card in known.values():
                if card.encounter_id is None:
                    continue
                conn.execute(
                    encounter_memory.update()
                    .where(
                        encounter_memory.c.caller == caller,
                        encounter_memory.c.encounter_id == card.encounter_id,
                        encounter_memory.c.rule == card.rule,
                        encounter_memory.c.target_ref == (card.target_ref or ""),
                        encounter_memory.c.target_fingerprint == (card.target_fingerprint or ""),
                    )
                    .values(answered=True, updated_at=now)
                )
        return [i.card_uuid in known for i in items]

    def _await_cards(self, uuids: set[str], caller: str) -> None:
        """With the card log written in the background, a card another worker (or instance) answered a moment
        ago may still be in that worker's queue: wait a little for it (FEEDBACK_CARD_WAIT_S, only while some
        card is not found) before an answer is stored as about an unknown card."""
        deadline = time.monotonic() + FEEDBACK_CARD_WAIT_S
        query = select(cards.c.uuid).where(cards.c.uuid.in_(uuids), cards.c.caller == caller)
        while True:
            with self.engine.connect() as conn:
                if len(set(conn.scalars(query))) == len(uuids) or time.monotonic() >= deadline:
                    return
            time.sleep(0.05)

    # --- memory -------------------------------------------------------------------------------------

    def overrides_since(self, caller: str, patient_id: str, since: datetime) -> set[tuple[str, str, str | None]]:
        """(rule, override reason code, target fingerprint) of every reasoned override by this caller for this
        patient since `since`."""
        self._ready()
        with dbapi_session(self.engine, commit=False) as session:
            rows = session.execute(
                self._hot.overrides_since, {"caller": caller, "patient_id": patient_id, "since": since}
            )
        return {(rule, code, target) for rule, code, target in rows}

    def encounter_history(self, caller: str, encounter_id: str) -> EncounterHistory:
        """What this encounter has already shown, and which of those cards were answered."""
        self._ready()
        shown: set[str] = set()
        answered: set[tuple[str, str | None, str | None]] = set()
        with dbapi_session(self.engine, commit=False) as session:
            rows = session.execute(self._hot.encounter_history, {"caller": caller, "encounter_id": encounter_id})
        for rule, target, fingerprint, has_feedback in rows:
            shown.add(rule)
            if has_feedback:  # SQLite answers 0/1, PostgreSQL a bool
                answered.add((rule, target or None, fingerprint or None))
        if self._card_log is not None:  # this process's calls whose entries are still queued were shown too
            for records, _, _ in self._card_log.pending():
                shown.update(
                    r.rule
                    for r in records
                    if r.caller == caller and r.encounter_id == encounter_id and r.suppressed_because is None
                )
        return EncounterHistory(frozenset(shown), frozenset(answered))

    # --- replay guard -------------------------------------------------------------------------------

    def first_use(self, iss: str, jti: str, expires: float) -> bool:
        """True the first time this (issuer, jti) is seen by any instance: one atomic insert; expired ids are
        deleted on the way. A database that cannot answer is a 503: never an accepted replay."""
        try:
            self._ready()
            with self._writing() as conn:
                conn.execute(seen_jti.delete().where(seen_jti.c.expires < time.time()))
                # RETURNING says whether this insert made the row (rowcount is not reliable for ON CONFLICT).
                inserted = conn.execute(
                    _insert_ignore(seen_jti, self.engine.dialect.name).returning(seen_jti.c.jti),
                    {"iss": fitted_key(iss), "jti": fitted_key(jti), "expires": expires},
                ).first()
        except SQLAlchemyError as exc:
            self.failed("replay guard", exc)
            raise StorageUnavailable("the token could not be checked against replays; please retry") from exc
        return inserted is not None

    # --- reporting and retention ---------------------------------------------------------------------

    def report_groups(self, start: datetime, end: datetime, by: str) -> list[str]:
        """The services (by="service_id") or calling EHRs (by="caller") that had cards in the period."""
        self._settle()
        self._ready()
        column = {"service_id": cards.c.service_id, "caller": cards.c.caller}[by]
        with self.engine.connect() as conn:
            found = conn.execute(select(column).where(cards.c.created_at.between(start, end)).distinct())
            return sorted(str(value) for (value,) in found)

    def report(
        self, start: datetime, end: datetime, *, service_id: str | None = None, caller: str | None = None
    ) -> dict[str, dict[str, Any]]:
        """Per rule: cards shown and held back, and the answers given, for the period (one service's or one
        calling EHR's cards only, when named)."""
        self._settle()
        self._ready()
        out: dict[str, dict[str, Any]] = {}

        def entry(rule: str) -> dict[str, Any]:
            return out.setdefault(
                rule,
                {
                    "shown": 0,
                    "suppressed": 0,
                    "accepted": 0,
                    "overridden": 0,
                    "override_reasons": {},
                    "free_text": 0,
                    "first_answer": {"accepted": 0, "overridden": 0},
                    "every_answer": {"accepted": 0, "overridden": 0},
                },
            )

        conditions: list[ColumnElement[bool]] = [cards.c.created_at.between(start, end)]
        if service_id is not None:
            conditions.append(cards.c.service_id == service_id)
        if caller is not None:
            conditions.append(cards.c.caller == caller)
        in_range = and_(*conditions)
        with self.engine.connect() as conn:
            for rule, suppressed, count in conn.execute(
                select(cards.c.rule, cards.c.suppressed_because.is_not(None), func.count())
                .where(in_range)
                .group_by(cards.c.rule, cards.c.suppressed_because.is_not(None))
            ):
                entry(rule)["suppressed" if suppressed else "shown"] += count
            # A card can be answered more than once (accepted, then overridden): "accepted" and "overridden" are
            # each card's final answer, "first_answer" its first, and "every_answer" counts every answer given.
            rows = conn.execute(
                select(
                    cards.c.rule,
                    feedback.c.card_uuid,
                    feedback.c.outcome,
                    feedback.c.reason_code,
                    feedback.c.user_comment,
                )
                .join(feedback, feedback.c.card_uuid == cards.c.uuid)
                .where(in_range)
                .order_by(feedback.c.outcome_timestamp, feedback.c.id)
            ).all()
        latest: dict[str, tuple[str, str, str | None, str | None]] = {}
        for rule, uuid, outcome, reason, comment in rows:
            if uuid not in latest:
                entry(rule)["first_answer"][outcome] += 1
            entry(rule)["every_answer"][outcome] += 1
            latest[uuid] = (rule, outcome, reason, comment)
        for rule, outcome, reason, comment in latest.values():
            e = entry(rule)
            e[outcome] += 1
            if outcome == "overridden":
                key = reason or "(no reason)"
                e["override_reasons"][key] = e["override_reasons"].get(key, 0) + 1
                if comment:
                    e["free_text"] += 1
        for e in out.values():
            answered = e["accepted"] + e["overridden"]
            e["acceptance_rate"] = round(e["accepted"] / e["shown"], 3) if e["shown"] else None
            e["free_text_share"] = round(e["free_text"] / e["overridden"], 3) if e["overridden"] else None
            e["answered"] = answered
        return out

    def purge(self, older_than: datetime) -> tuple[int, int]:
        self.flush()
        self._ready()
        with self._writing() as conn:
            f = conn.execute(feedback.delete().where(feedback.c.received_at < older_than)).rowcount
            c = conn.execute(cards.delete().where(cards.c.created_at < older_than)).rowcount
            conn.execute(encounter_memory.delete().where(encounter_memory.c.updated_at < older_than))
            conn.execute(imaging_orders.delete().where(imaging_orders.c.created_at < older_than))
        return c, f

    def clinician_report(self, start: datetime, end: datetime, caller: str | None = None) -> dict[str, Any]:
        """Per clinician (context.userId): lumbar imaging orders on the order hooks, how many had no red flag
        on the record, how many were cancelled or replaced after the imaging card (its final answer was to accept
        a suggestion), and the override reasons given; beside the median of their peers. Each order (a
        patient and its clinical content) counts once per clinician; no patient is named."""
        self._settle()
        self._ready()
        in_range: list[ColumnElement[bool]] = [imaging_orders.c.created_at.between(start, end)]
        if caller is not None:
            in_range.append(imaging_orders.c.caller == caller)
        with self.engine.connect() as conn:
            seen = conn.execute(
                select(
                    imaging_orders.c.user_id,
                    imaging_orders.c.patient_id,
                    imaging_orders.c.order_fingerprint,
                    imaging_orders.c.red_flag,
                    imaging_orders.c.card_uuid,
                    imaging_orders.c.created_at,
                ).where(and_(*in_range))
            ).all()
            uuids = {row.card_uuid for row in seen if row.card_uuid}
            answers = conn.execute(
                select(feedback.c.card_uuid, feedback.c.outcome, feedback.c.reason_code)
                .where(feedback.c.card_uuid.in_(uuids))
                .order_by(feedback.c.outcome_timestamp, feedback.c.id)
            ).all()
        final = {uuid: (outcome, reason) for uuid, outcome, reason in answers}  # the latest answer per card
        orders: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        for row in seen:
            order = orders.setdefault(row.user_id or "(no userId)", {}).setdefault(
                (row.patient_id, row.order_fingerprint), {"red_flag": False, "cards": set(), "first": None}
            )
            order["red_flag"] |= bool(row.red_flag)
            seen_at = _utc(row.created_at)
            order["first"] = seen_at if order["first"] is None else min(order["first"], seen_at)
            if row.card_uuid:
                order["cards"].add(row.card_uuid)
        clinicians: dict[str, dict[str, Any]] = {}
        for user, by_order in sorted(orders.items()):
            reasons: dict[str, int] = {}
            changed = 0
            for order in by_order.values():
                outcomes = [final[c] for c in order["cards"] if c in final]
                changed += any(outcome == "accepted" for outcome, _ in outcomes)
                for outcome, reason in outcomes:
                    if outcome == "overridden":
                        reasons[reason or "(no reason)"] = reasons.get(reason or "(no reason)", 0) + 1
            total = len(by_order)
            without = sum(1 for order in by_order.values() if not order["red_flag"])
            clinicians[user] = {
                "imaging_orders": total,
                "without_red_flag": without,
                "without_red_flag_share": round(without / total, 3),
                "cancelled_or_replaced": changed,
                "override_reasons": reasons,
                "weekly": _weekly_orders(by_order.values(), start, end),
            }
        shares = sorted(c["without_red_flag_share"] for c in clinicians.values())
        peers = _median(shares) if shares else None
        return {"clinicians": clinicians, "peer_median_without_red_flag_share": peers}
