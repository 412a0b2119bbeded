from django.core.management.base import BaseCommand

from evaluators.services import runs_sweep


class Command(BaseCommand):
    help = (
        "Re-queue evaluation runs whose worker stopped sending heartbeats, publish again queued "
        "runs whose message the broker lost, or fail them after PEDIGREE_EVALUATION_MAX_ATTEMPTS "
        "tries. Celery beat runs the same sweep periodically."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--stale-seconds",
            type=int,
            help="heartbeat age that counts as a vanished worker "
            "(default: PEDIGREE_EVALUATION_STALE_SECONDS)",
        )

    def handle(self, *args, **options):
        report = runs_sweep(stale_seconds=options["stale_seconds"])
        requeued = ", ".join(f"#{pk}" for pk in report.requeued) or "none"
        republished = ", ".join(f"#{pk}" for pk in report.republished) or "none"
        failed = ", ".join(f"#{pk}" for pk in report.failed) or "none"
        self.stdout.write(
            f"Re-queued: {requeued}. Published again: {republished}. Failed: {failed}."
        )
