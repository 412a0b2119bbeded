"""What every lineage write shares: the lineage lock, and model validation that names the bad
field (with the prefix of the nested input it came from)."""

from collections.abc import Sequence

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection, transaction
from django.db import models as dj_models

from registry.errors import InvalidInput, invalid_from_django

# Arbitrary constant naming the PostgreSQL advisory lock that serialises lineage writes.
LINEAGE_LOCK_KEY = 7_220_432


def lineage_write_lock(*, shared: bool = False) -> None:
    """Serialise lineage writes for the rest of the transaction (PostgreSQL).

    Locking the two endpoint rows of a new edge is not enough: edges X→Y and U→V inserted at
    once can close a cycle through existing paths Y…U and V…X without sharing a row. One
    transaction-level advisory lock makes "check reachability, then insert" atomic, and also
    orders hold propagation against new edges so no descendant escapes a hold. It comes first
    in the lock order ("Lock order" in docs/architecture.md): take it before any row lock or
    write of the transaction. On SQLite the database file lock already serialises writers.

    `shared`: for the registration of a new version, which shares the lock with every other
    registration and excludes only the writers that take it whole (edges to existing versions,
    training runs recorded later, holds, upstream imports). Registrations need nothing from each
    other: a new version has no descendants, so its edges cannot close a cycle, and no other
    transaction can name it as a parent before it commits; what must not interleave with them,
    a hold spreading over descendants, takes the lock whole and waits for them.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lineage_write_lock must be taken inside a transaction")
    if connection.vendor == "postgresql":
        function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {function}(%s)", [LINEAGE_LOCK_KEY])


def _prefixed(error: InvalidInput, prefix: str) -> InvalidInput:
    if not prefix:
        return error
    fields = {
        f"{prefix}.{name}" if name != "__all__" else prefix: messages
        for name, messages in error.fields.items()
    }
    return InvalidInput(f"{prefix}.{error.message}" if fields else error.message, fields=fields)


def clean(obj: dj_models.Model, *, prefix: str = "", exclude: Sequence[str] = ()) -> None:
    """The row's own fields, checked in Python; foreign keys (rows the caller holds), unique
    values and constraints are the INSERT's to refuse."""
    relations = [field.name for field in obj._meta.concrete_fields if field.is_relation]
    try:
        obj.full_clean(
            exclude=[*exclude, *relations], validate_unique=False, validate_constraints=False
        )
    except DjangoValidationError as error:
        raise _prefixed(invalid_from_django(error), prefix) from None
