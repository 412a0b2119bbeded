from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from registry.services import uploads_sweep


class Command(BaseCommand):
    help = (
        "Delete the artefact uploads that no version took within PEDIGREE_UPLOAD_TTL_HOURS, "
        "files included. Celery beat runs the same sweep every hour."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        swept = uploads_sweep()
        hours = settings.PEDIGREE_UPLOAD_TTL_HOURS
        names = ", ".join(str(upload_id) for upload_id in swept) or "none"
        self.stdout.write(f"Deleted {len(swept)} upload(s) older than {hours} h: {names}.")
