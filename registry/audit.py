"""The append-only, hash-chained audit log.

Each entry's hash is SHA-256 over the previous entry's hash and the entry's own canonical JSON,
so editing, deleting or inserting a row breaks the chain from that row on (`audit_verify`).

Writers append entries unsealed, inside the transaction of their change and without any lock,
so audited writes never queue behind each other. Sealing (giving entries their place `seq` in
the chain and their hashes) happens right after each commit and on a schedule, under the
chain's lock, in commit order: only the sealer serialises, and only for a few milliseconds.
"""

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from registry.models import AuditEntry
from registry.types import Actor

GENESIS_HASH = "0" * 64
# Arbitrary constant naming the PostgreSQL advisory lock that serialises appends to the chain.
CHAIN_LOCK_KEY = 7_220_431
_SEAL_BATCH = 1000


def _canonical(value: Any) -> Any:
    """JSON-normalise a value so it hashes the same before and after a database round trip."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True))


def entry_hash(*, prev_hash: str, fields: dict[str, Any]) -> str:
    payload = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev_hash}\n{payload}".encode()).hexdigest()


def _hashed_fields(entry: AuditEntry) -> dict[str, Any]:
    return {
        "at": entry.at.isoformat(),
        "actor_id": entry.actor_id,
        "actor_name": entry.actor_name,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "object_repr": entry.object_repr,
        "before": entry.before,
        "after": entry.after,
    }


def _entry(
    actor: Actor | None,
    action: str,
    obj: Model | None,
    object_type: str | None,
    object_id: str | int | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> AuditEntry:
    return AuditEntry(
        at=timezone.now(),
        actor=actor if getattr(actor, "pk", None) else None,
        actor_name=getattr(actor, "username", None) or "system",
        action=action,
        object_type=object_type or (obj._meta.label_lower if obj is not None else "system"),
        object_id=str(object_id if object_id is not None else getattr(obj, "pk", "")),
        object_repr=str(obj)[:255] if obj is not None else "",
        before=_canonical(before) if before is not None else None,
        after=_canonical(after) if after is not None else None,
    )


_SEAL_CALLBACK = "_pedigree_audit_seal"
# On the connection once `audit_seal_before_commit` sealed the transaction's entries, until an
# entry is recorded again: the seal after the commit then has nothing to do.
_SEALED_INLINE = "_pedigree_audit_sealed_inline"
# On the connection while an `audit_batch` block runs: the entries it will insert.
_BATCH = "_pedigree_audit_batch"


def _seal_after_commit() -> None:
    """Seal after the transaction commits: once, however many entries it appends."""
    current = transaction.get_connection()
    if not current.in_atomic_block:
        raise RuntimeError("audit_record must be called inside the transaction of the change")
    setattr(current, _SEALED_INLINE, False)
    # The callback registered by an earlier entry of this transaction, while it is still to run:
    # a rollback (of the transaction, or of the savepoint it was registered in) drops it from
    # the list, and running it forgets it.
    registered = getattr(current, _SEAL_CALLBACK, None)
    if registered is not None and any(
        callback is registered for _, callback, _ in current.run_on_commit
    ):
        return

    def seal() -> None:
        setattr(current, _SEAL_CALLBACK, None)
        if getattr(current, _SEALED_INLINE, False):
            return
        _seal_pending()  # the entries are there: no need to ask first, as `audit_seal` does

    setattr(current, _SEAL_CALLBACK, seal)
    transaction.on_commit(seal, robust=True)


def audit_record(
    *,
    actor: Actor | None,
    action: str,
    obj: Model | None = None,
    object_type: str | None = None,
    object_id: str | int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append an unsealed entry; it must run inside the transaction of the change it records.
    Inside `audit_batch` the entry is inserted (and gets its id) when the batch ends."""
    _seal_after_commit()
    entry = _entry(actor, action, obj, object_type, object_id, before, after)
    batch = getattr(transaction.get_connection(), _BATCH, None)
    if batch is not None:
        batch.append(entry)
    else:
        entry.save(force_insert=True)
    return entry


def audit_record_many(
    *, actor: Actor | None, action: str, changes: Sequence[tuple[Model, dict[str, Any] | None]]
) -> list[AuditEntry]:
    """`audit_record` for several objects changed the same way, each with its `after`: one
    INSERT, in the transaction of the changes."""
    _seal_after_commit()
    entries = [_entry(actor, action, obj, None, None, None, after) for obj, after in changes]
    batch = getattr(transaction.get_connection(), _BATCH, None)
    if batch is not None:
        batch.extend(entries)
        return entries
    return AuditEntry.objects.bulk_create(entries)


@contextmanager
def audit_batch() -> Iterator[None]:
    """Keep the entries recorded inside the block and insert them together, in one INSERT, when
    it ends (in the same transaction, in the order they were recorded): a service writing
    several audited rows pays for one statement instead of one per entry.

    For blocks whose errors all leave the block (and roll the transaction back): an entry of a
    change undone by a savepoint rollback that the block survived would still be written.
    """
    current = transaction.get_connection()
    if not current.in_atomic_block:
        raise RuntimeError("audit_batch must be used inside the transaction of the changes")
    if getattr(current, _BATCH, None) is not None:  # nested: the outer batch inserts them
        yield
        return
    entries: list[AuditEntry] = []
    setattr(current, _BATCH, entries)
    try:
        yield
    finally:
        setattr(current, _BATCH, None)
    AuditEntry.objects.bulk_create(entries)


def audit_seal() -> int:
    """Chain every committed unsealed entry, in id order, after the sealed head; return how many.

    Safe to run concurrently from any number of processes: the chain's lock (an advisory lock on
    PostgreSQL; the write transaction itself on SQLite) admits one sealer at a time.
    """
    if not AuditEntry.objects.filter(seq__isnull=True).exists():
        # Idle sweeps end here, without taking the chain's lock or a write transaction.
        return 0
    return _seal_pending()


def audit_seal_before_commit() -> None:
    """Seal the entries of the current transaction, as its last step before the commit, instead of
    in a transaction of their own after it: for a service that ends its transaction right after
    this. The chain's lock is taken last and held only until the commit, so writers still do not
    queue behind each other for longer than a seal, and the chain's order stays commit order."""
    current = transaction.get_connection()
    if not current.in_atomic_block:
        raise RuntimeError("audit_seal_before_commit must be called inside the transaction")
    if any(not getattr(block, "_from_testcase", False) for block in current.atomic_blocks[:-1]):
        # Inside a caller's transaction: sealing now would hold the chain's lock until that one
        # commits, so its commit seals, as any write's does.
        return
    _seal_pending(savepoint=False)
    setattr(current, _SEALED_INLINE, True)


def _seal_pending(*, savepoint: bool = True) -> int:
    with transaction.atomic(savepoint=savepoint):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_KEY])
        pending = list(AuditEntry.objects.filter(seq__isnull=True).order_by("id")[:_SEAL_BATCH])
        if not pending:
            return 0
        head = (
            AuditEntry.objects.filter(seq__isnull=False)
            .order_by("-seq")
            .values_list("seq", "hash")
            .first()
        )
        # Sealed rows always have both; the fallbacks only satisfy the nullable column types.
        seq, prev_hash = (head[0] or 0, head[1] or GENESIS_HASH) if head else (0, GENESIS_HASH)
        for entry in pending:
            seq += 1
            entry.seq, entry.prev_hash = seq, prev_hash
            prev_hash = entry_hash(prev_hash=prev_hash, fields=_hashed_fields(entry))
            entry.hash = prev_hash
        # One statement run for every row: Django's bulk_update builds a CASE per field and row,
        # which cost more CPU than the rest of the seal.
        table = connection.ops.quote_name(AuditEntry._meta.db_table)
        with connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {table} SET seq = %s, prev_hash = %s, hash = %s WHERE id = %s",  # noqa: S608
                [(entry.seq, entry.prev_hash, entry.hash, entry.pk) for entry in pending],
            )
    return len(pending) + (_seal_pending() if len(pending) == _SEAL_BATCH else 0)


@dataclass(frozen=True)
class ChainReport:
    checked: int
    first_broken_id: int | None
    problem: str
    unsealed: int = 0

    @property
    def ok(self) -> bool:
        return self.first_broken_id is None


def audit_verify_chain() -> ChainReport:
    """Walk the sealed chain in order, streaming rows, and report the first broken entry.

    Entries not sealed yet (committed in the last moments, or left by a crashed sealer until the
    next seal) are counted, not judged.
    """
    expected_prev = GENESIS_HASH
    checked = 0
    sealed = AuditEntry.objects.filter(seq__isnull=False).order_by("seq")
    for entry in sealed.iterator(chunk_size=2000):
        if entry.seq != checked + 1:
            return ChainReport(
                checked,
                entry.pk,
                f"it sits at position {entry.seq}, expected {checked + 1} "
                "(an entry before it was deleted or inserted)",
            )
        if entry.prev_hash != expected_prev:
            return ChainReport(
                checked,
                entry.pk,
                "its prev_hash does not match the previous entry's hash "
                "(an entry before it was deleted, inserted or edited)",
            )
        if entry_hash(prev_hash=entry.prev_hash, fields=_hashed_fields(entry)) != entry.hash:
            return ChainReport(checked, entry.pk, "its content does not match its hash (edited)")
        expected_prev = entry.hash
        checked += 1
    unsealed = AuditEntry.objects.filter(seq__isnull=True).count()
    return ChainReport(checked, None, "", unsealed=unsealed)
