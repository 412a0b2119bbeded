"""The audit log: every write appends an entry, sealed into a hash chain right after commit;
edits, deletions and insertions are detected by audit_verify."""

import itertools
import os
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from registry.audit import audit_record, audit_seal
from registry.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def sealed(django_capture_on_commit_callbacks):
    """Run the after-commit sealer as a real commit would (test transactions never commit)."""

    def run(build, *args):
        with django_capture_on_commit_callbacks(execute=True):
            return build(*args)

    return run


def test_every_service_write_is_audited_in_a_chain(sealed, make_version, make_dataset_version):
    sealed(make_version)
    sealed(make_dataset_version)
    entries = list(AuditEntry.objects.order_by("seq"))
    assert [e.action for e in entries] == [
        "model.create",
        "version.create",
        "dataset.create",
        "dataset_version.create",
    ]
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert entries[0].prev_hash == "0" * 64
    for previous, entry in itertools.pairwise(entries):
        assert entry.prev_hash == previous.hash
    assert entries[1].actor_name == "alice"
    assert entries[1].after["version"]


def test_entries_stay_unsealed_until_commit_and_verify_counts_them(make_version, capsys):
    make_version()
    assert not AuditEntry.objects.filter(seq__isnull=False).exists()
    call_command("audit_verify")
    assert "0 entries verified (2 newest awaiting sealing)" in capsys.readouterr().out
    assert audit_seal() == 2
    assert audit_seal() == 0
    call_command("audit_verify")
    assert "2 entries verified." in capsys.readouterr().out


def test_audit_verify_passes_then_names_an_edited_row(sealed, make_version, capsys):
    sealed(make_version)
    sealed(make_version)
    call_command("audit_verify")
    assert "4 entries verified" in capsys.readouterr().out
    tampered = AuditEntry.objects.order_by("id")[1]
    AuditEntry.objects.filter(pk=tampered.pk).update(actor_name="someone-else")
    with pytest.raises(CommandError, match=rf"entry #{tampered.pk}: its content"):
        call_command("audit_verify")


def test_audit_verify_detects_a_deleted_row(sealed, make_version):
    sealed(make_version)
    sealed(make_version)
    victim = AuditEntry.objects.order_by("seq")[1]
    AuditEntry.objects.filter(pk=victim.pk).delete()
    with pytest.raises(CommandError, match="position 3, expected 2"):
        call_command("audit_verify")


def test_audit_verify_detects_a_relinked_row(sealed, make_version):
    """Deleting a row and renumbering the rest is caught by the link to the deleted hash."""
    sealed(make_version)
    sealed(make_version)
    victim = AuditEntry.objects.order_by("seq")[1]
    AuditEntry.objects.filter(pk=victim.pk).delete()
    for entry in AuditEntry.objects.filter(seq__gt=victim.seq).order_by("seq"):
        AuditEntry.objects.filter(pk=entry.pk).update(seq=entry.seq - 1)
    with pytest.raises(CommandError, match="prev_hash"):
        call_command("audit_verify")


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL"
)
@pytest.mark.django_db(transaction=True)
def test_audited_writers_do_not_wait_for_each_other(make_model):
    """A transaction that has audited a change and not committed blocks no other audited write."""
    model = make_model("acme/slow")
    recorded, release = threading.Event(), threading.Event()

    def slow_writer():
        try:
            with transaction.atomic():
                audit_record(actor=None, action="test.slow", obj=model)
                recorded.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    try:
        assert recorded.wait(10)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")
            audit_record(actor=None, action="test.fast", obj=model)
    finally:
        release.set()
        thread.join()
    audit_seal()
    actions = list(AuditEntry.objects.order_by("seq").values_list("action", flat=True))
    assert actions[-2:] == ["test.fast", "test.slow"]
    assert actions.count("test.slow") == 1


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


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL"
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_seal_one_intact_chain(api_for, engineer, make_version):
    """Registrations seal their own entries as their transaction's last step, each taking the
    chain's lock just before its commit: racing ones still leave one chain, in commit order,
    with nothing unsealed."""
    parent = make_version()
    audit_seal()
    start = threading.Barrier(4)
    statuses: list[int] = []

    def register(n: int) -> None:
        try:
            start.wait(10)
            for i in range(5):
                response = api_for(engineer).post(
                    "/api/v1/registrations/",
                    {
                        "model": f"acme/race-{n}-{i}",
                        "version": "v1",
                        "create_model": {"team": "acme"},
                        "artefact_digest": f"{n * 10 + i:064x}",
                        "parents": [{"version": str(parent), "relation": "finetune"}],
                    },
                    format="json",
                )
                statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=register, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201] * 20
    assert not AuditEntry.objects.filter(seq__isnull=True).exists()
    call_command("audit_verify")  # raises CommandError on a broken chain


def test_a_registration_inside_a_callers_transaction_leaves_sealing_to_its_commit(
    engineer, make_version, django_capture_on_commit_callbacks
):
    """Sealing before the commit is for a registration that is its own transaction: inside a
    caller's, it would hold the chain's lock until that one commits."""
    from lineage.services import registration_record

    with django_capture_on_commit_callbacks(execute=True):  # as if it had committed
        parent = make_version()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        registration_record(
            actor=engineer,
            model=parent.model.name,
            version="v-nested",
            artefact_digest="c" * 64,
            parents=[],
        )
        assert AuditEntry.objects.filter(seq__isnull=True).exists()  # not sealed yet
    assert not AuditEntry.objects.filter(seq__isnull=True).exists()  # sealed at the commit
