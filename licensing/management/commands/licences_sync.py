"""`manage.py licences_sync`: re-seed the licence tables from the catalogue after an upgrade."""

import json

from django.core.management.base import BaseCommand

from licensing.services import licences_sync


class Command(BaseCommand):
    help = (
        "Create or refresh every licence, its terms and the Hugging Face Hub licence ids from "
        "the licence catalogue. Categories and review flags compliance changed are kept."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, **options):
        report = licences_sync(actor=None).to_dict()
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2, sort_keys=True))
            return
        self.stdout.write(
            f"Licences: {report['created']} created, {report['updated']} updated; "
            f"{report['terms']} terms; {report['hub_ids']} Hub licence ids."
        )
        if report["kept_compliance_reading"]:
            self.stdout.write(
                "Kept compliance's category/review flag for: "
                + ", ".join(report["kept_compliance_reading"])
            )
        if report["not_in_catalogue"]:
            self.stdout.write(
                "No longer in the catalogue (kept): " + ", ".join(report["not_in_catalogue"])
            )
