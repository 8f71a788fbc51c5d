"""The shadow database: a temporary database holding what the migrations describe.

`shadow_database()` creates it next to the live database (same server, same encoding
and locale, from `template0`) and drops it afterwards whatever happens: an error, Ctrl-C
(KeyboardInterrupt), or a SIGTERM the caller turned into one (`sigterm_as_interrupt`).
A shadow left behind by a killed process (SIGKILL) is dropped by the next run. Two runs
against the same database do not share a shadow: the second one is refused while the
first holds the shadow's advisory lock. `migrate()` applies migrations to a shadow over
one connection and prints nothing.
"""

import copy
import hashlib
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor
from psycopg import sql

SUFFIX = "_shadow"
MAX_NAME_LENGTH = 63


class ShadowError(Exception):
    """The shadow database could not be created or migrated."""


def shadow_name(database_name: str) -> str:
    """`<database>_shadow`, shortened with a hash to PostgreSQL's 63-byte limit."""
    name = f"{database_name}{SUFFIX}"
    if len(name.encode()) <= MAX_NAME_LENGTH:
        return name
    digest = hashlib.sha256(database_name.encode()).hexdigest()[:8]
    keep = MAX_NAME_LENGTH - len(SUFFIX) - len(digest) - 1
    return f"{database_name.encode()[:keep].decode(errors='ignore')}_{digest}{SUFFIX}"


def admin_connection(live: BaseDatabaseWrapper) -> psycopg.Connection:
    """A separate autocommit connection to the live database (CREATE/DROP DATABASE
    cannot run inside the transaction the live connection may be in)."""
    params = live.get_connection_params()
    return psycopg.connect(**params, autocommit=True)


def one_row(cursor: psycopg.Cursor[tuple[Any, ...]]) -> tuple[Any, ...]:
    """The row of a query that always returns one (about the server or the live database)."""
    row = cursor.fetchone()
    if row is None:
        raise ShadowError("the server returned no row where it always returns one")
    return row


def drop(live: BaseDatabaseWrapper, name: str) -> None:
    """Drop `name` over a new connection: the one that created it may have been cut by
    the interrupt that brought us here."""
    with admin_connection(live) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def shadow_database(alias: str = "default") -> Iterator[BaseDatabaseWrapper]:
    """Create an empty shadow of `alias`'s database and yield a connection to it."""
    live = connections[alias]
    name = shadow_name(live.settings_dict["NAME"])
    try:
        admin = admin_connection(live)
    except psycopg.Error as error:
        raise ShadowError(f"cannot connect to database {live.settings_dict['NAME']!r}: {error}") from error
    shadow = None
    try:
        locked = one_row(admin.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [name]))[0]
        if not locked:
            raise ShadowError(
                f"another schema check is using the shadow database {name!r}; run again when it has finished"
            )
        encoding, collate, ctype = one_row(
            admin.execute(
                "SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database WHERE datname = %s",
                [live.settings_dict["NAME"]],
            )
        )
        try:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}").format(
                    sql.Identifier(name), sql.Literal(encoding), sql.Literal(collate), sql.Literal(ctype)
                )
            )
        except psycopg.Error as error:
            raise ShadowError(
                f"cannot create the shadow database {name!r} ({error}); the database user needs the CREATEDB privilege"
            ) from error
        settings_dict = copy.deepcopy(live.settings_dict)
        settings_dict["NAME"] = name
        settings_dict["OPTIONS"].pop("pool", None)
        # The shadow is thrown away: no need to wait for the disk at every commit.
        options = settings_dict["OPTIONS"].get("options", "")
        settings_dict["OPTIONS"]["options"] = f"{options} -c synchronous_commit=off".strip()
        shadow = live.__class__(settings_dict, alias)
        yield shadow
    finally:
        if shadow is not None:
            shadow.close()
        try:
            drop(live, name)
        finally:
            admin.close()


def migrate(connection: BaseDatabaseWrapper, targets: Sequence[tuple[str, str]]) -> int:
    """Apply, quietly, the migrations needed to reach `targets` to the empty shadow
    database `connection`; return how many were applied.

    While they run, `connections[alias]` is the shadow, so that a data migration that
    forgets `.using(schema_editor.connection.alias)` writes into the shadow and never into
    the live database.
    """
    live = connections[connection.alias]
    connections[connection.alias] = connection
    try:
        executor = MigrationExecutor(connection)
        graph = executor.loader.graph
        nodes: dict[tuple[str, str], None] = {}
        for target in targets:
            nodes.update(dict.fromkeys(graph.forwards_plan(target)))
        plan = [(graph.nodes[node], False) for node in nodes]
        if plan:
            executor.migrate(targets, plan=plan)
    except Exception as error:  # noqa: BLE001 - whatever a migration raises, the check cannot go on
        raise ShadowError(f"the migrations do not apply to an empty database: {error!r}") from error
    finally:
        connections[connection.alias] = live
    return len(plan)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt while the block runs, so that a deploy tool
    stopping the command still drops the shadow database on the way out."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
