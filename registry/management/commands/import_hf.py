import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from registry import services
from registry.errors import ServiceError
from registry.models import Team
from registry.selectors import hub_bases_of


class Command(BaseCommand):
    help = (
        "Import one revision of a Hugging Face Hub model as an upstream version: model card "
        "(licence, datasets, base models), pinned commit SHA, safetensors headers. Offline "
        "(HF_HUB_OFFLINE=1) it reads the local HF cache; --snapshot-dir may name any folder on "
        "this machine. Importing the same revision again changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("repo_id", help="e.g. sentence-transformers/all-MiniLM-L6-v2")
        parser.add_argument("--revision", help="commit SHA, branch or tag (default: main)")
        parser.add_argument("--snapshot-dir", help="a local snapshot folder to read instead")
        parser.add_argument("--team", help="importing team slug (default: the user's only team)")
        parser.add_argument(
            "--with-bases",
            action="store_true",
            help="import the card's base models too (recursively, bounded; from the local cache "
            "offline, else the Hub) where not imported yet",
        )
        parser.add_argument(
            "--base-revision",
            action="append",
            metavar="REPO@SHA",
            help="link this commit of a base model (repeatable; default: the newest imported)",
        )
        parser.add_argument(
            "--user", help="who imports, for the audit log (default: the only superuser)"
        )

    def handle(self, *args, repo_id, revision, snapshot_dir, team, user, **options):
        pins = {}
        for pin in options["base_revision"] or []:
            base, sep, sha = pin.rpartition("@")
            if not sep or not base:
                raise CommandError(f"--base-revision {pin!r}: write it as REPO@SHA.")
            pins[base] = sha
        actor = self._user(user)
        owner = self._team(actor, team)
        with tqdm(
            desc=f"Hashing {repo_id}",
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=sys.stderr,
            disable=None,
            leave=False,
        ) as bar:

            def progress(relpath: str, done: int, total: int) -> None:
                bar.total = total
                bar.set_postfix_str(relpath, refresh=False)
                bar.update(done - bar.n)

            try:
                version, created = services.upstream_import(
                    actor=actor,
                    team=owner,
                    repo_id=repo_id,
                    revision=revision,
                    snapshot_dir=snapshot_dir,
                    confine_snapshot=False,
                    progress=progress,
                    with_bases=options["with_bases"],
                    base_revisions=pins,
                )
            except ServiceError as error:
                raise CommandError(error.message) from None
        card = version.hub_card
        state = "Imported" if created else "Already imported:"
        self.stdout.write(
            self.style.SUCCESS(f"{state} {version} (revision {version.hub_revision})")
        )
        review = " (needs review)" if card["licence"]["review_required"] else ""
        self.stdout.write(f"  licence     {version.licence_declared}{review}")
        self.stdout.write(f"  parameters  {version.parameter_count:,}")
        self.stdout.write(f"  digest      sha256:{version.artefact_digest}")
        self.stdout.write(f"  datasets    {len(card['datasets'])}")
        for base in hub_bases_of(actor, version):
            where = base["registered"] or "not registered"
            if base["unresolved"]:
                where += ": unresolved reference, no artefact or licence evidence yet"
            self.stdout.write(f"  base model  {base['repo_id']} ({where})")

    def _user(self, username: str | None):
        users = get_user_model().objects
        if username:
            found = users.filter(username=username).first()
            if found is None:
                raise CommandError(f"No user named '{username}'.")
            return found
        superusers = list(users.filter(is_superuser=True)[:2])
        if len(superusers) != 1:
            raise CommandError("Name the importing user with --user USERNAME.")
        return superusers[0]

    def _team(self, actor, slug: str | None) -> Team:
        if slug:
            found = Team.objects.filter(slug=slug).first()
            if found is None:
                raise CommandError(f"No team '{slug}'.")
            return found
        teams = list(actor.teams.all()[:2])
        if len(teams) != 1:
            raise CommandError(
                f"Name the importing team with --team ({actor.username} is in "
                f"{'several teams' if teams else 'no team'})."
            )
        return teams[0]
