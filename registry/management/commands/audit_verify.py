from django.core.management.base import BaseCommand, CommandError

from registry.audit import audit_verify_chain


class Command(BaseCommand):
    help = "Verify the audit log's hash chain and name the first broken entry."

    def handle(self, *args, **options):
        report = audit_verify_chain()
        if not report.ok:
            raise CommandError(
                f"Audit chain broken at entry #{report.first_broken_id}: {report.problem}. "
                f"{report.checked} entries before it verified."
            )
        pending = f" ({report.unsealed} newest awaiting sealing)" if report.unsealed else ""
        self.stdout.write(
            self.style.SUCCESS(f"Audit chain intact: {report.checked} entries verified{pending}.")
        )
