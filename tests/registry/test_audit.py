"""The audit log: every write appends a chained entry; edits are detected by audit_verify."""

import itertools

import pytest
from django.core.management import CommandError, call_command

from registry.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_every_service_write_is_audited_in_a_chain(make_version, make_dataset_version):
    make_version()
    make_dataset_version()
    entries = list(AuditEntry.objects.order_by("id"))
    assert [e.action for e in entries] == [
        "model.create",
        "version.create",
        "dataset.create",
        "dataset_version.create",
    ]
    assert entries[0].prev_hash == "0" * 64
    for previous, entry in itertools.pairwise(entries):
        assert entry.prev_hash == previous.hash
    assert entries[1].actor_name == "alice"
    assert entries[1].after["version"]


def test_audit_verify_passes_then_names_an_edited_row(make_version, capsys):
    make_version()
    make_version()
    call_command("audit_verify")
    assert "4 entries verified" in capsys.readouterr().out
    tampered = AuditEntry.objects.order_by("id")[1]
    AuditEntry.objects.filter(pk=tampered.pk).update(actor_name="someone-else")
    with pytest.raises(CommandError, match=rf"entry #{tampered.pk}: its content"):
        call_command("audit_verify")


def test_audit_verify_detects_a_deleted_row(make_version):
    make_version()
    make_version()
    victim = AuditEntry.objects.order_by("id")[1]
    AuditEntry.objects.filter(pk=victim.pk).delete()
    with pytest.raises(CommandError, match="prev_hash"):
        call_command("audit_verify")


def test_failed_write_leaves_no_audit_entry(api_for, engineer, make_model):
    make_model("acme/m")
    count = AuditEntry.objects.count()
    response = api_for(engineer).post(
        "/api/v1/versions/",
        {"model": "acme/m", "version": "v1", "artefact_digest": "bad"},
        format="json",
    )
    assert response.status_code == 400
    assert AuditEntry.objects.count() == count


def test_admin_cannot_edit_or_delete_audit_entries(admin_client, make_version):
    make_version()
    entry = AuditEntry.objects.first()
    page = admin_client.get(f"/admin/registry/auditentry/{entry.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert admin_client.post(f"/admin/registry/auditentry/{entry.pk}/delete/").status_code == 403
