"""Helpers for writing SQL by hand: a statement and its parameters, and values prepared
by their fields as the ORM would."""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import Field, Model

# A statement or a fragment of one, and its parameters.
SQL = tuple[str, Sequence[Any]]


def status_in(statuses: Iterable[str]) -> SQL:
    """`"status" IN (%s, ...)` for these statuses, in a stable order."""
    ordered = sorted(statuses)
    return f'"status" IN ({", ".join(["%s"] * len(ordered))})', ordered


def quoted_column(model: type[Model], name: str) -> tuple[str, Field[Any, Any]]:
    """The quoted column of a concrete field, and the field."""
    field = model._meta.get_field(name)
    if not isinstance(field, Field) or not field.column:
        raise LookupError(f"{model.__name__}.{name} is not a column")
    return connection.ops.quote_name(field.column), field


def pk(model: type[Model], value: UUID) -> Any:
    """A primary key as the database driver takes it."""
    return quoted_column(model, "id")[1].get_db_prep_value(value, connection)


def datetime_param(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)
