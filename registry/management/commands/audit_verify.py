import base64
import binascii
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry.audit import audit_verify_chain
from registry.checkpoints import checkpoints_verify


class Command(BaseCommand):
    help = (
        "Verify the audit log's hash chain, then check it against the latest signed "
        "checkpoints (deleted tails, re-hashed chains, forged checkpoints)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--checkpoints",
            default=settings.PEDIGREE_AUDIT_CHECKPOINT_FILE,
            help="the exported checkpoint file (default: PEDIGREE_AUDIT_CHECKPOINT_FILE)",
        )
        parser.add_argument(
            "--verify-key",
            help="the base64 Ed25519 verification key (default: PEDIGREE_AUDIT_VERIFY_KEY)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        public = settings.PEDIGREE_AUDIT_VERIFY_KEY
        if options["verify_key"]:
            try:
                public = base64.b64decode(options["verify_key"], validate=True)
            except (binascii.Error, ValueError):
                raise CommandError("--verify-key is not base64.") from None
        report = audit_verify_chain()
        if not report.ok:
            raise CommandError(
                f"Audit chain broken at entry #{report.first_broken_id}: {report.problem}. "
                f"{report.checked} entries before it verified."
            )
        checkpoints = checkpoints_verify(public=public, exported=options["checkpoints"])
        for warning in checkpoints.warnings:
            self.stderr.write(self.style.WARNING(f"Warning: {warning}."))
        if not checkpoints.ok:
            raise CommandError(
                "Audit chain does not match its signed checkpoints: "
                + "; ".join(checkpoints.problems)
                + "."
            )
        pending = f" ({report.unsealed} newest awaiting sealing)" if report.unsealed else ""
        against = (
            f", matching {len(checkpoints.checked)} signed checkpoint(s)"
            if checkpoints.checked
            else ""
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Audit chain intact: {report.checked} entries verified{pending}{against}."
            )
        )
