"""Abuse controls: the admin sign-in lockout, the rate limit on failed token guesses, and the
Content-Security-Policy."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

pytestmark = pytest.mark.django_db

PASSWORD = "test-password-123"  # what make_user gives every user


def sign_in(client: Client, username: str, password: str, **extra):
    return client.post(
        "/admin/login/?next=/admin/", {"username": username, "password": password}, **extra
    )


def test_admin_sign_in_locks_out_a_password_guesser(make_user, settings):
    from axes.models import AccessAttempt

    admin = make_user("root", is_staff=True, is_superuser=True)
    guesser = Client(REMOTE_ADDR="198.51.100.7")
    failures = [
        sign_in(guesser, "root", f"guess-{n}").status_code
        for n in range(settings.AXES_FAILURE_LIMIT)
    ]
    # The right password no longer opens it from that address, whatever X-Forwarded-For says.
    locked = sign_in(guesser, "root", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.1")
    assert failures[:-1] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    assert failures[-1] == 429
    assert locked.status_code == 429 and "_auth_user_id" not in guesser.session
    page = locked.content.decode()
    assert "Sign-in locked" in page and "for 15 minutes" in page
    assert "axes_reset_username root" in page

    # The real user, from another address, is not locked out by the guesser.
    elsewhere = Client(REMOTE_ADDR="192.0.2.10")
    assert sign_in(elsewhere, "root", PASSWORD).status_code == 302
    assert elsewhere.session["_auth_user_id"] == str(admin.pk)

    # Once the cool-off has passed, the right password works from the guesser's address too.
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert sign_in(guesser, "root", PASSWORD).status_code == 302


def test_the_lockout_follows_the_settings(make_user, settings):
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(minutes=3)
    make_user("root", is_staff=True, is_superuser=True)
    guesser = Client(REMOTE_ADDR="198.51.100.7")
    assert sign_in(guesser, "root", "wrong").status_code == 200
    second = sign_in(guesser, "root", "wrong")
    assert second.status_code == 429 and "for 3 minutes" in second.content.decode()
