"""The rate-limit counters live in a cache every web process shares (CACHE_URL, by default a
folder under the data directory): a budget spent through one process is spent for another; a
Redis cache that is down answers 503, not 500."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.core.cache import caches
from rest_framework.test import APIClient

from config.env import env_cache

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
ADDRESS = "198.51.100.23"

# A second process, with its own cache connection, asks once from the same address.
SECOND_PROCESS = f"""
import django
django.setup()
from django.test import Client
response = Client(REMOTE_ADDR={ADDRESS!r}, HTTP_HOST="localhost").get("/api/v1/teams/")
print(response.status_code)
"""


def redis_url() -> str | None:
    for name in ("CACHE_URL", "CELERY_BROKER_URL"):
        url = os.environ.get(name, "")
        if url.startswith("redis://"):
            return url
    return None


def cache_urls() -> list:
    url = redis_url()
    return [
        "file://{tmp}/cache",
        pytest.param(url, marks=pytest.mark.skipif(url is None, reason="no Redis URL set")),
    ]


@pytest.mark.parametrize("url", cache_urls())
def test_a_budget_spent_in_one_process_is_spent_in_another(settings, tmp_path, monkeypatch, url):
    url = url.format(tmp=tmp_path)
    prefix = f"test-{uuid.uuid4().hex}"  # nothing left from an earlier run counts
    monkeypatch.setenv("CACHE_URL", url)
    settings.CACHES = {"default": env_cache("CACHE_URL", tmp_path / "unused", key_prefix=prefix)}
    anonymous = APIClient(REMOTE_ADDR=ADDRESS)
    rate = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["anon"].split("/")[0])
    statuses = {anonymous.get("/api/v1/teams/").status_code for _ in range(rate)}
    assert statuses == {401}
    # The counter is in the configured cache, read through a connection of its own.
    fresh = caches.create_connection("default")
    assert len(fresh.get(f"throttle_failed_auth_{ADDRESS}")) == rate

    second = subprocess.run(
        [sys.executable, "-c", SECOND_PROCESS],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "CACHE_URL": url,
            "PEDIGREE_CACHE_KEY_PREFIX": prefix,
            "PEDIGREE_DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip().splitlines()[-1] == "429"
    # Another address, from the same process, is not limited.
    assert APIClient(REMOTE_ADDR="192.0.2.44").get("/api/v1/teams/").status_code == 401


def test_a_redis_cache_that_is_down_answers_503(settings, api_for, engineer, monkeypatch):
    monkeypatch.setenv("CACHE_URL", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    settings.CACHES = {"default": env_cache("CACHE_URL", Path("/unused"), key_prefix="down")}
    for api in (api_for(engineer), api_for(None)):
        response = api.get("/api/v1/teams/")
        assert response.status_code == 503
        assert response.json()["error"]["status"] == 503 and response["Retry-After"]


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        (None, "filebased.FileBasedCache"),
        ("redis://cache.internal:6379/2", "redis.RedisCache"),
        ("rediss://cache.internal:6380/0", "redis.RedisCache"),
        ("file:///srv/pedigree/cache", "filebased.FileBasedCache"),
        ("locmem://", "locmem.LocMemCache"),
    ],
)
def test_cache_urls_are_parsed(monkeypatch, url, backend):
    if url is None:
        monkeypatch.delenv("CACHE_URL", raising=False)
    else:
        monkeypatch.setenv("CACHE_URL", url)
    config = env_cache("CACHE_URL", Path("/data/cache"), key_prefix="p")
    assert config["BACKEND"] == f"django.core.cache.backends.{backend}"
    assert config["KEY_PREFIX"] == "p"
    if url is None:
        assert config["LOCATION"] == "/data/cache"
