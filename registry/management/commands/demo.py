from django.core.management.base import BaseCommand

from registry.demo.accounts import DEMO_PASSWORD, ensure_demo_accounts


class Command(BaseCommand):
    help = "Load the demo: accounts with API tokens and a small catalogue. Safe to re-run."

    def handle(self, *args, **options):
        _team, accounts = ensure_demo_accounts()
        self.stdout.write(self.style.MIGRATE_HEADING("Pedigree demo is ready."))
        self.stdout.write("  Admin:    http://127.0.0.1:8000/admin/")
        self.stdout.write("  API docs: http://127.0.0.1:8000/api/docs/")
        self.stdout.write(f"  Log in with any of these (password: {DEMO_PASSWORD}):")
        for account in accounts:
            self.stdout.write(f"    {account.username:<6} {account.role:<26} token {account.token}")
        engineer = next(a for a in accounts if a.username == "alice")
        self.stdout.write("  Try the client:")
        self.stdout.write(
            f"    export PEDIGREE_URL=http://127.0.0.1:8000 PEDIGREE_TOKEN={engineer.token}"
        )
        self.stdout.write("    .venv/bin/pedigree models list")
