"""Demo accounts: an administrator, a compliance officer and an engineer, each with an API token."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from rest_framework.authtoken.models import Token

from registry import services
from registry.models import COMPLIANCE_GROUP, Team

# A local demo only: fixed, printed credentials so the README can show them.
DEMO_PASSWORD = "pedigree-demo"


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: str
    token: str


@transaction.atomic
def ensure_demo_accounts() -> tuple[Team, list[DemoAccount]]:
    User = get_user_model()
    compliance, _ = Group.objects.get_or_create(name=COMPLIANCE_GROUP)
    specs = [
        ("admin", "administrator", {"is_staff": True, "is_superuser": True}),
        ("carol", "compliance officer", {"is_staff": True}),
        ("dan", "compliance officer", {"is_staff": True}),
        ("alice", "ML engineer (team acme)", {}),
    ]
    accounts = []
    for username, role, flags in specs:
        user, created = User.objects.get_or_create(username=username, defaults=flags)
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        if username in ("carol", "dan"):
            user.groups.add(compliance)
            _grant_compliance_admin(user)
        token, _ = Token.objects.get_or_create(user=user)
        accounts.append(DemoAccount(username, role, token.key))
    admin = User.objects.get(username="admin")
    team = Team.objects.filter(slug="acme").first() or services.team_create(
        actor=admin, slug="acme", name="Acme ML", description="Demo engineering team"
    )
    alice = User.objects.get(username="alice")
    if not team.members.filter(pk=alice.pk).exists():
        services.team_member_add(actor=admin, team=team, user=alice)
    return team, accounts


def _grant_compliance_admin(user) -> None:
    """Compliance staff use the admin: give them view/change on everything Pedigree owns."""
    from django.contrib.auth.models import Permission

    permissions = Permission.objects.filter(
        content_type__app_label__in=["registry", "lineage", "licensing", "evaluators"]
    ).exclude(codename__startswith="delete_")
    user.user_permissions.add(*permissions)
