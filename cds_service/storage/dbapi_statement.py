"""The few statements every hook call runs, executed on the DB-API connection.

Each statement is still written once, with SQLAlchemy Core (`store.py`), and compiled once per engine by
SQLAlchemy for that engine's dialect: its SQL, parameter style, constants and the type conversions of its
parameters (SQLite's datetime text, the JSON encoder) are SQLAlchemy's own. Only the per-call machinery is
left out: building a `Connection`, looking the statement up in the compiled cache, the execution context and
result wrapping cost about three times what SQLite takes to run the statement (issue 17, measured in process:
`Store.log_cards` 0.41 ms for a card on an encounter, 0.12 ms on the DB-API connection).

Errors are raised as SQLAlchemy's `DBAPIError` subclasses, so callers handle one family of exceptions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


class CompiledStatement:
    """One statement compiled for one dialect: its SQL text and a function from values to DB-API parameters."""

    def __init__(self, statement: ClauseElement, engine: Engine) -> None:
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)  # DML and queries compile to SQL (not DDL)
        self.sql = compiled.string
        binds = compiled.bind_names  # each bind parameter -> its name in the SQL text
        # Literals written in the statement (outcome == "overridden") are parameters too; their values are fixed.
        self._constants = {name: bind.value for bind, name in binds.items() if not bind.required}
        self._processors: dict[str, Callable[[Any], Any]] = {
            name: processor
            for bind, name in binds.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        self._order = tuple(compiled.positiontup or ()) if compiled.positional else None

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        merged = {**self._constants, **values}
        for name, processor in self._processors.items():
            merged[name] = processor(merged[name])
        return merged if self._order is None else tuple(merged[name] for name in self._order)


class DbapiSession:
    """A DB-API cursor from the engine's pool for one unit of work; committed at the end when writing."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, statement: CompiledStatement, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        self._cursor.execute(statement.sql, statement.parameters(values))
        return list(self._cursor.fetchall()) if self._cursor.description else []

    def execute_many(self, statement: CompiledStatement, rows: Sequence[Mapping[str, Any]]) -> None:
        if len(rows) == 1:  # one row is the common case: execute() skips executemany's iteration
            self._cursor.execute(statement.sql, statement.parameters(rows[0]))
        elif rows:
            self._cursor.executemany(statement.sql, [statement.parameters(r) for r in rows])


@contextmanager
def dbapi_session(engine: Engine, *, commit: bool) -> Iterator[DbapiSession]:
    """Check a connection out of the pool (its connect-time settings, e.g. SQLite's pragmas, applied as for any
    other use), and return it; on a driver error the connection is discarded and the error re-raised as the
    matching `sqlalchemy.exc.DBAPIError` (OperationalError, IntegrityError, ...)."""
    driver_error = engine.dialect.loaded_dbapi.Error
    try:
        # The pool connects outside SQLAlchemy's error translation: a database that is down raises the
        # driver's own error here (psycopg.OperationalError), which callers would not recognise.
        connection = engine.raw_connection()
    except driver_error as exc:
        raise DBAPIError.instance(None, None, exc, driver_error, dialect=engine.dialect) from exc
    try:
        cursor = connection.cursor()
        try:
            yield DbapiSession(cursor)
            if commit:
                connection.commit()
        finally:
            cursor.close()
    except driver_error as exc:
        connection.invalidate(exc)  # a broken connection must not go back to the pool
        raise DBAPIError.instance(None, None, exc, driver_error, dialect=engine.dialect) from exc
    finally:
        connection.close()  # back to the pool, rolled back if not committed
