"""Write a signed checkpoint of the audit chain now (celery beat writes them on a schedule)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry.checkpoints import CheckpointKeyMissing, audit_checkpoint_write, new_key_pair


class Command(BaseCommand):
    help = "Sign the audit chain's head (PEDIGREE_AUDIT_SIGNING_KEY) and export the checkpoint."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--new-key",
            action="store_true",
            help="print a new Ed25519 key pair for PEDIGREE_AUDIT_SIGNING_KEY and "
            "PEDIGREE_AUDIT_VERIFY_KEY instead",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["new_key"]:
            signing, verify = new_key_pair()
            self.stdout.write(f"PEDIGREE_AUDIT_SIGNING_KEY={signing}")
            self.stdout.write(f"PEDIGREE_AUDIT_VERIFY_KEY={verify}")
            return
        try:
            checkpoint = audit_checkpoint_write()
        except CheckpointKeyMissing as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Checkpoint #{checkpoint.pk}: {checkpoint.entry_count} entries, head "
                f"#{checkpoint.seq} {checkpoint.head_hash[:12]}…, key {checkpoint.key_id}."
            )
        )
