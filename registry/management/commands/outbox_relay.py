"""Publish pending outbox messages to the broker: once, or continuously (a long-running process
beside the workers, for deployments that want sends within seconds of a broker's return)."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from registry.outbox import outbox_relay


class Command(BaseCommand):
    help = "Publish the outbox messages not sent yet (the broker was down); --once or forever."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Relay what is due, then exit.")
        parser.add_argument(
            "--interval",
            type=float,
            default=float(settings.PEDIGREE_OUTBOX_RELAY_SECONDS),
            help="Seconds between relays (default PEDIGREE_OUTBOX_RELAY_SECONDS).",
        )

    def handle(self, *args, once: bool, interval: float, **options):
        while True:
            close_old_connections()
            report = outbox_relay()
            if report.sent or report.failed:
                self.stdout.write(f"sent {len(report.sent)}, not sent {len(report.failed)}")
            if once:
                return
            time.sleep(interval)
