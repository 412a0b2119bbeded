"""Signed checkpoints of the audit chain: what a database writer can do to the chain alone
(delete its tail, re-hash it, forge or delete checkpoints) is caught by audit_verify."""

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from registry.audit import GENESIS_HASH, _hashed_fields, entry_hash
from registry.checkpoints import checkpoint_record, new_key_pair, signed_payload
from registry.models import AuditCheckpoint, AuditEntry, EventDelivery, WebhookEndpoint
from registry.tasks import write_audit_checkpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys(settings, tmp_path):
    signing, verify = new_key_pair()
    settings.PEDIGREE_AUDIT_SIGNING_KEY = base64.b64decode(signing)
    settings.PEDIGREE_AUDIT_VERIFY_KEY = base64.b64decode(verify)
    settings.PEDIGREE_AUDIT_CHECKPOINT_FILE = str(tmp_path / "checkpoints.jsonl")
    return tmp_path / "checkpoints.jsonl"


@pytest.fixture
def history(make_version, django_capture_on_commit_callbacks):
    """Some audited, sealed writes."""
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            make_version()
    return AuditEntry.objects.filter(seq__isnull=False).count()


def checkpoint(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("audit_checkpoint")


def verify(capsys):
    call_command("audit_verify")
    return capsys.readouterr().out


def test_a_checkpoint_is_signed_exported_and_verified(
    keys, history, capsys, django_capture_on_commit_callbacks
):
    WebhookEndpoint.objects.create(name="sink", url="http://127.0.0.1:9/", secret="s", events=[])
    checkpoint(django_capture_on_commit_callbacks)
    stored = AuditCheckpoint.objects.get()
    assert stored.entry_count == history and stored.seq == history
    exported = [json.loads(line) for line in keys.read_text().splitlines()]
    assert exported == [checkpoint_record(stored)]
    assert EventDelivery.objects.get(event="audit.checkpoint").payload["data"]["seq"] == history
    assert "matching 1 signed checkpoint(s)" in verify(capsys)


def test_deleting_the_newest_entries_is_detected(
    keys, history, capsys, django_capture_on_commit_callbacks
):
    """The bypass: deleting the newest rows left a shorter chain that verified intact."""
    checkpoint(django_capture_on_commit_callbacks)
    AuditEntry.objects.filter(seq__gt=history - 2).delete()
    with pytest.raises(CommandError, match="its tail was deleted"):
        call_command("audit_verify")


def test_a_rehashed_chain_is_detected(keys, history, django_capture_on_commit_callbacks):
    """An attacker edits an entry and recomputes every hash after it: the chain is
    consistent again, but no longer the one the checkpoint signed."""
    checkpoint(django_capture_on_commit_callbacks)
    entries = list(AuditEntry.objects.filter(seq__isnull=False).order_by("seq"))
    entries[0].after = {"edited": True}
    prev = GENESIS_HASH
    for entry in entries:
        entry.prev_hash = prev
        entry.hash = entry_hash(prev_hash=prev, fields=_hashed_fields(entry))
        prev = entry.hash
    AuditEntry.objects.bulk_update(entries, ["after", "prev_hash", "hash"])
    with pytest.raises(CommandError, match="the chain was re-hashed"):
        call_command("audit_verify")


def test_forged_checkpoints_are_detected(keys, history, django_capture_on_commit_callbacks):
    checkpoint(django_capture_on_commit_callbacks)
    # Re-hashing and re-signing with a key of the attacker's own does not verify.
    forger = Ed25519PrivateKey.generate()
    stored = AuditCheckpoint.objects.get()
    stored.head_hash = "f" * 64
    payload = signed_payload(
        seq=stored.seq,
        head_hash=stored.head_hash,
        entry_count=stored.entry_count,
        signed_at=stored.signed_at,
    )
    stored.signature = base64.b64encode(forger.sign(payload)).decode()
    stored.save()
    with pytest.raises(CommandError, match="is forged"):
        call_command("audit_verify")


def test_checkpoints_deleted_from_the_database_show_in_the_file(
    keys, history, django_capture_on_commit_callbacks
):
    checkpoint(django_capture_on_commit_callbacks)
    AuditCheckpoint.objects.all().delete()
    with pytest.raises(CommandError, match="checkpoints were deleted from the database"):
        call_command("audit_verify")


def test_without_keys_checkpoints_are_refused_and_verify_warns(
    settings, history, capsys, django_capture_on_commit_callbacks
):
    settings.PEDIGREE_AUDIT_SIGNING_KEY = None
    with pytest.raises(CommandError, match="PEDIGREE_AUDIT_SIGNING_KEY is not set"):
        call_command("audit_checkpoint")
    assert write_audit_checkpoint() is None
    call_command("audit_verify")
    assert "no checkpoints yet" in capsys.readouterr().err
    call_command("audit_checkpoint", "--new-key")
    printed = capsys.readouterr().out
    assert "PEDIGREE_AUDIT_SIGNING_KEY=" in printed and "PEDIGREE_AUDIT_VERIFY_KEY=" in printed


def test_checkpoints_are_written_on_a_schedule():
    schedule = django_settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]
    assert schedule["task"] == "registry.tasks.write_audit_checkpoint"
