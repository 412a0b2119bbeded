"""Signed checkpoints of the audit chain: tamper evidence that survives truncation and
re-hashing.

The hash chain alone shows edits in the middle, but whoever can write to the database can
delete its newest entries or recompute every hash. A checkpoint signs (head seq, head hash,
entry count, time) with an Ed25519 key the database never holds (`PEDIGREE_AUDIT_SIGNING_KEY`)
and is copied outside the database (a JSON-lines file, a webhook event). `checkpoints_verify`
checks the chain against the latest checkpoints with the public key alone
(`PEDIGREE_AUDIT_VERIFY_KEY`), kept by whoever verifies, away from the database's writers.
"""

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from registry.audit import CHAIN_LOCK_KEY, audit_record, audit_seal
from registry.models import AuditCheckpoint, AuditEntry
from registry.services.events import event_publish


class CheckpointKeyMissing(Exception):
    """No signing key configured: checkpoints cannot be written."""


def new_key_pair() -> tuple[str, str]:
    """A fresh (signing key, verification key), base64, for the two settings."""
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(seed).decode(), base64.b64encode(public).decode()


def key_id(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:16]


def signed_payload(*, seq: int, head_hash: str, entry_count: int, signed_at: datetime) -> bytes:
    statement = {
        "seq": seq,
        "head_hash": head_hash,
        "entry_count": entry_count,
        "signed_at": signed_at.isoformat(),
    }
    return json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()


def checkpoint_record(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    """The checkpoint as exported to sinks and read back by verifiers."""
    return {
        "id": checkpoint.pk,
        "seq": checkpoint.seq,
        "head_hash": checkpoint.head_hash,
        "entry_count": checkpoint.entry_count,
        "signed_at": checkpoint.signed_at.isoformat(),
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
    }


def _export(record: dict[str, Any]) -> None:
    """Append to the file sink, if configured: open in append mode only, one JSON line."""
    path = settings.PEDIGREE_AUDIT_CHECKPOINT_FILE
    if path:
        with Path(path).open("a", encoding="utf-8") as sink:
            sink.write(json.dumps(record, sort_keys=True) + "\n")


def audit_checkpoint_write() -> AuditCheckpoint:
    """Seal what is pending, then sign the chain's head, store the checkpoint, append it to the
    file sink and publish it as the `audit.checkpoint` webhook event."""
    seed = settings.PEDIGREE_AUDIT_SIGNING_KEY
    if seed is None:
        raise CheckpointKeyMissing(
            "PEDIGREE_AUDIT_SIGNING_KEY is not set; generate a pair with "
            "`manage.py audit_checkpoint --new-key`."
        )
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    audit_seal()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:  # the head cannot move while it is read
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_KEY])
        sealed = AuditEntry.objects.filter(seq__isnull=False)
        head = sealed.order_by("-seq").values_list("seq", "hash").first()
        seq, head_hash = (int(head[0] or 0), head[1] or "") if head else (0, "")
        count = sealed.count()
        signed_at = timezone.now()
        payload = signed_payload(
            seq=seq, head_hash=head_hash or "", entry_count=count, signed_at=signed_at
        )
        checkpoint = AuditCheckpoint.objects.create(
            seq=seq,
            head_hash=head_hash or "",
            entry_count=count,
            signed_at=signed_at,
            key_id=key_id(public),
            signature=base64.b64encode(private.sign(payload)).decode(),
        )
        record = checkpoint_record(checkpoint)
        audit_record(actor=None, action="audit.checkpoint", obj=checkpoint, after=record)
        event_publish(kind="audit.checkpoint", payload=record)
    _export(record)
    return checkpoint


def _signature_valid(record: dict[str, Any], public: bytes) -> bool:
    signed_at = parse_datetime(str(record.get("signed_at", "")))
    if signed_at is None:
        return False
    try:
        payload = signed_payload(
            seq=int(record["seq"]),
            head_hash=str(record["head_hash"]),
            entry_count=int(record["entry_count"]),
            signed_at=signed_at,
        )
        Ed25519PublicKey.from_public_bytes(public).verify(
            base64.b64decode(record["signature"]), payload
        )
    except (InvalidSignature, KeyError, ValueError, TypeError):
        return False
    return True


@dataclass(frozen=True)
class CheckpointReport:
    checked: list[str]  # ids of the checkpoints the chain matches
    problems: list[str]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def _file_records(path: str) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                records.append({"line": number, "unreadable": True})
    return records


def checkpoints_verify(
    *, public: bytes | None, exported: str | None = None, latest: int = 3
) -> CheckpointReport:
    """Check the chain against the newest `latest` checkpoints in the database and in the
    exported file: each must carry a valid signature by the verification key, its head entry
    must still be in the chain with the signed hash (else re-hashed), and the chain must still
    hold at least the entries it counted (else its tail was deleted). A newer checkpoint in the
    file than in the database means checkpoints were deleted from the database."""
    problems: list[str] = []
    warnings: list[str] = []
    checked: list[str] = []
    stored = [checkpoint_record(c) for c in AuditCheckpoint.objects.all()[:latest]]
    outside = _file_records(exported)[-latest:] if exported else []
    if not stored and not outside:
        warnings.append(
            "no checkpoints yet: deleting the newest entries or re-hashing the chain would not "
            "show; write them on a schedule (celery beat) or with `manage.py audit_checkpoint`"
        )
        return CheckpointReport(checked, problems, warnings)
    if public is None:
        warnings.append(
            "PEDIGREE_AUDIT_VERIFY_KEY is not set: checkpoint signatures were not verified"
        )
    sealed = AuditEntry.objects.filter(seq__isnull=False)
    count = sealed.count()
    newest_stored = max((int(r["seq"]) for r in stored), default=-1)
    for source, records in (("database", stored), ("file", outside)):
        for record in records:
            if record.get("unreadable"):
                problems.append(f"line {record['line']} of the checkpoint file is not JSON")
                continue
            name = f"checkpoint #{record.get('id')} ({source}, seq {record.get('seq')})"
            if public is not None and not _signature_valid(record, public):
                problems.append(f"{name} is forged: its signature does not verify")
                continue
            seq, head_hash = int(record["seq"]), str(record["head_hash"])
            if seq:
                actual = sealed.filter(seq=seq).values_list("hash", flat=True).first()
                if actual is None:
                    problems.append(
                        f"{name}: entry {seq} is gone; the chain now holds {count} sealed "
                        "entries (its tail was deleted)"
                    )
                    continue
                if actual != head_hash:
                    problems.append(
                        f"{name}: entry {seq} has hash {actual[:12]}…, not the signed "
                        f"{head_hash[:12]}… (the chain was re-hashed)"
                    )
                    continue
            if count < int(record["entry_count"]):
                problems.append(
                    f"{name} counted {record['entry_count']} entries; the chain holds {count} "
                    "(entries were deleted)"
                )
                continue
            if source == "file" and seq > newest_stored:
                problems.append(
                    f"{name} is newer than any checkpoint in the database "
                    "(checkpoints were deleted from the database)"
                )
                continue
            if str(record.get("id")) not in checked:
                checked.append(str(record.get("id")))
    return CheckpointReport(checked, problems, warnings)
