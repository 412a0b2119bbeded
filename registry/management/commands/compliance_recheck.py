"""Recompute every version's compliance now (the embedded default's schedule; celery beat runs
the same periodically) and list what is out of compliance."""

from typing import Any

from django.core.management.base import BaseCommand

from registry.models import ComplianceState
from registry.services import compliance_recheck


class Command(BaseCommand):
    help = "Recompute every version's compliance; exit 1 when any staged version is out of it."

    def handle(self, *args: Any, **options: Any) -> None:
        statuses = compliance_recheck()
        out = [s for s in statuses if s.state == ComplianceState.OUT_OF_COMPLIANCE]
        for status in out:
            self.stdout.write(f"OUT OF COMPLIANCE {status.version} ({status.stage})")
            for row in status.failing:
                if row["stage"] == status.stage:
                    self.stdout.write(f"  {row['check']}: {'; '.join(row['reasons'])}")
        self.stdout.write(f"{len(statuses)} versions assessed, {len(out)} out of compliance.")
        if out:
            raise SystemExit(1)
