"""Multi-row INSERT (and upsert) of plain tuples: what ``bulk_create`` does, without building a
model instance per row, which is most of its cost at the thousands of rows a second history writes."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from django.db import connection
from django.db.models import Model

# Django assumes SQLite's historical limit of 999 parameters; the library here says what it allows.
_SQLITE_PARAMS_FALLBACK = 999


def insert_rows(
    model: type[Model],
    fields: Sequence[str],
    rows: Sequence[tuple],
    conflict_fields: Sequence[str] = (),
    update_fields: Sequence[str] = (),
) -> None:
    """INSERT ``rows`` (tuples in the order of ``fields``), as few statements as the backend's
    parameter limit allows. With ``conflict_fields``, a row that collides on them updates
    ``update_fields`` instead (``ON CONFLICT ... DO UPDATE``, SQLite >= 3.24 and PostgreSQL)."""
    if not rows:
        return
    qn = connection.ops.quote_name
    columns = [model._meta.get_field(name).column for name in fields]
    head = f"INSERT INTO {qn(model._meta.db_table)} ({', '.join(qn(c) for c in columns)}) VALUES "
    tail = ""
    if conflict_fields:
        conflict = ", ".join(qn(model._meta.get_field(name).column) for name in conflict_fields)
        updates = ", ".join(
            f"{qn(c)} = EXCLUDED.{qn(c)}"
            for c in (model._meta.get_field(name).column for name in update_fields)
        )
        tail = f" ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    per_statement = max(1, _max_params() // len(columns))
    with connection.cursor() as cursor:
        for i in range(0, len(rows), per_statement):
            chunk = rows[i : i + per_statement]
            cursor.execute(head + ", ".join([one] * len(chunk)) + tail, [v for row in chunk for v in row])


def _max_params() -> int:
    if connection.vendor != "sqlite":
        return 30_000  # PostgreSQL takes 65535 bind parameters a statement
    connection.ensure_connection()
    try:
        return connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    except AttributeError:  # Python < 3.11
        return _SQLITE_PARAMS_FALLBACK
