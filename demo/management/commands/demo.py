from typing import Literal

from django.core.management.base import BaseCommand

from demo.accounts import DEMO_PASSWORD, ensure_demo_accounts
from demo.scenario import run_demo


class Command(BaseCommand):
    help = (
        "Load the demo: accounts with API tokens, the MiniLM upstream model, three derived "
        "models trained by transfer learning, their evaluations and gate decisions. Safe to re-run."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--size",
            choices=["full", "small"],
            default="full",
            help="dataset size (small: quicker, for tests)",
        )
        parser.add_argument(
            "--url",
            default="http://127.0.0.1:8000",
            help="where the server will answer, for the instructions printed at the end",
        )

    def handle(self, *args, size: Literal["full", "small"], url: str, **options):
        url = url.rstrip("/")
        heading = self.style.MIGRATE_HEADING
        self.stdout.write(heading("Pedigree demo: a transfer-learning story"))
        outcomes = run_demo(size=size, say=self.stdout.write)
        _team, accounts = ensure_demo_accounts()
        self.stdout.write(heading("Result"))
        for outcome in outcomes:
            verdict = (
                "in production"
                if outcome.gate_passed
                else (
                    "blocked: " + ", ".join(c for c in outcome.failing if c != "approvals")
                    or "blocked"
                )
            )
            self.stdout.write(f"  {outcome.ref:<28} {verdict}")
        self.stdout.write(heading("Pedigree demo is ready."))
        self.stdout.write(
            f"  Dashboard: {url}/admin/  (one production model, "
            "two blocked versions and why)"
        )
        self.stdout.write(f"  API docs:  {url}/api/docs/")
        self.stdout.write(f"  Log in with any of these (password: {DEMO_PASSWORD}):")
        for account in accounts:
            self.stdout.write(f"    {account.username:<6} {account.role:<26} token {account.token}")
        engineer = next(a for a in accounts if a.username == "alice")
        self.stdout.write("  Try the client:")
        self.stdout.write(
            f"    export PEDIGREE_URL={url} PEDIGREE_TOKEN={engineer.token}"
        )
        self.stdout.write("    .venv/bin/pedigree lineage acme/support-intent@v1")
        self.stdout.write("    .venv/bin/pedigree gate acme/support-intent@v2 --stage production")
