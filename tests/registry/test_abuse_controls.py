"""Abuse controls: the admin sign-in lockout, the rate limit on failed token guesses, and the
Content-Security-Policy."""

import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from registry.api.throttling import FailedAuthenticationThrottle

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


def test_failed_token_guesses_are_rate_limited_per_address(engineer, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "3/minute", "user": "6000/minute"},
    }
    good = Token.objects.create(user=engineer).key
    guesser = APIClient(REMOTE_ADDR="198.51.100.7")
    statuses = [
        guesser.get("/api/v1/teams/", HTTP_AUTHORIZATION=f"Token {'0' * 39}{n}").status_code
        for n in range(4)
    ]
    assert statuses == [401, 401, 401, 429]
    # Locked: even the right token is not checked from that address, so a lucky guess tells
    # the guesser nothing; another X-Forwarded-For does not make another address.
    locked = guesser.get(
        "/api/v1/teams/", HTTP_AUTHORIZATION=f"Token {good}", HTTP_X_FORWARDED_FOR="203.0.113.9"
    )
    assert locked.status_code == 429
    error = locked.json()["error"]
    assert error["status"] == 429 and 0 < int(locked["Retry-After"]) <= 60
    # The owner of the token, elsewhere, is unaffected.
    owner = APIClient(REMOTE_ADDR="192.0.2.10")
    assert owner.get("/api/v1/teams/", HTTP_AUTHORIZATION=f"Token {good}").status_code == 200
    # Requests with no token at all count against the same budget.
    anonymous = APIClient(REMOTE_ADDR="192.0.2.99")
    assert [anonymous.get("/api/v1/teams/").status_code for _ in range(4)] == [401] * 3 + [429]


def test_the_failed_authentication_window_passes(engineer, settings, monkeypatch):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "2/minute", "user": "6000/minute"},
    }
    good = Token.objects.create(user=engineer).key
    guesser = APIClient(REMOTE_ADDR="198.51.100.7", HTTP_AUTHORIZATION=f"Token {'0' * 40}")
    assert [guesser.get("/api/v1/teams/").status_code for _ in range(3)] == [401, 401, 429]
    later = time.time() + 61
    monkeypatch.setattr(FailedAuthenticationThrottle, "timer", lambda self: later)
    again = guesser.get("/api/v1/teams/", HTTP_AUTHORIZATION=f"Token {good}")
    assert again.status_code == 200


def test_every_page_carries_the_content_security_policy(admin_client, api_for, engineer):
    answers = [
        admin_client.get("/admin/"),
        admin_client.get("/api/docs/"),
        api_for(engineer).get("/api/v1/teams/"),
        api_for(None).get("/api/v1/teams/"),
    ]
    for answer in answers:
        policy = dict(
            directive.strip().split(" ", 1)
            for directive in answer["Content-Security-Policy"].split(";")
        )
        assert policy["default-src"] == "'self'"
        assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
        assert policy["object-src"] == policy["frame-ancestors"] == "'none'"
    # The API docs page runs no inline script or style, which the policy would refuse.
    docs = answers[1].content.decode()
    assert "<script src=" in docs and "<script>" not in docs and "<style" not in docs
    script = admin_client.get("/api/docs/?script=")
    assert (
        script["Content-Type"] == "application/javascript" and b"SwaggerUIBundle" in script.content
    )


def test_behind_a_proxy_the_forwarded_address_is_the_client(engineer, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "2/minute", "user": "6000/minute"},
        "NUM_PROXIES": 1,  # what PEDIGREE_BEHIND_PROXY=true sets
    }
    good = Token.objects.create(user=engineer).key
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    guesser = APIClient(**proxy, HTTP_X_FORWARDED_FOR="198.51.100.7")
    statuses = [
        guesser.get("/api/v1/teams/", HTTP_AUTHORIZATION=f"Token {'0' * 40}").status_code
        for _ in range(3)
    ]
    assert statuses == [401, 401, 429]
    # Another client behind the same proxy keeps its own budget.
    owner = APIClient(**proxy, HTTP_X_FORWARDED_FOR="192.0.2.10")
    assert owner.get("/api/v1/teams/", HTTP_AUTHORIZATION=f"Token {good}").status_code == 200
