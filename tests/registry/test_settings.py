"""Settings are parsed strictly and production mode passes `check --deploy`."""

import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "PEDIGREE_MODE": "production",
    "SECRET_KEY": "x7!kq-" * 12,
    "ALLOWED_HOSTS": "pedigree.example.com",
    "DEBUG": "false",
}


def manage(*args, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in PRODUCTION and k != "DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_check_deploy_is_clean(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        PEDIGREE_DATA_DIR=str(tmp_path),
        **PRODUCTION,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "perhaps"}, "DEBUG='perhaps' is not a boolean"),
        ({**PRODUCTION, "SECRET_KEY": ""}, "SECRET_KEY must be set"),
        ({**PRODUCTION, "SECRET_KEY": "short"}, "at least 50 characters"),
        ({**PRODUCTION, "DEBUG": "true"}, "DEBUG must be false"),
        ({**PRODUCTION, "ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS must be set"),
        ({"PEDIGREE_MODE": "staging"}, "PEDIGREE_MODE='staging' must be one of"),
        ({"PEDIGREE_ARTEFACT_ROOTS": "relative/dir"}, "must list absolute paths"),
        ({"DATABASE_CONN_MAX_AGE": "soon"}, "is not an integer"),
        ({"DATABASE_PREPARED_STATEMENTS": "maybe"}, "is not a boolean"),
        ({"PEDIGREE_LOGIN_FAILURE_LIMIT": "0"}, "LOGIN_FAILURE_LIMIT=0 must be at least 1"),
        ({"PEDIGREE_EVALUATION_QUEUED_STALE_SECONDS": "6h"}, "is not an integer"),
        ({"PEDIGREE_DELIVERY_QUEUED_STALE_SECONDS": "0"}, "STALE_SECONDS=0 must be at least 1"),
        ({"PEDIGREE_MAX_MANIFEST_BYTES": "1000"}, "MANIFEST_BYTES=1000 must be at least 65536"),
        ({"CACHE_URL": "memcached://cache:11211"}, "is not a cache URL"),
        ({"CACHE_URL": "file://relative/cache"}, "is not a cache URL"),
    ],
)
def test_bad_settings_fail_loudly_at_start_up(env, message):
    result = manage("check", **env)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PEDIGREE_ARTEFACT_STORAGE": "nfs"}, "PEDIGREE_ARTEFACT_STORAGE='nfs' must be one of"),
        pytest.param(
            {"PEDIGREE_ARTEFACT_STORAGE": "s3", "PEDIGREE_S3_BUCKET": "models"},
            "PEDIGREE_ARTEFACT_STORAGE=s3 needs django-storages with boto3; install the s3 extra",
            marks=pytest.mark.skipif(
                find_spec("storages") is not None and find_spec("boto3") is not None,
                reason="the s3 extra is installed",
            ),
        ),
    ],
)
def test_artefact_storage_misconfiguration_fails_loudly_at_start_up(env, message):
    result = manage("check", **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_postgresql_keeps_connections_and_prepares_statements(tmp_path):
    show = (
        "from django.conf import settings; d = settings.DATABASES['default']; "
        "print(d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS'], sorted(d['OPTIONS'].items()))"
    )
    url = {"DATABASE_URL": "postgres://pedigree@db.example:5432/pedigree"}
    on = manage("shell", "-c", show, PEDIGREE_DATA_DIR=str(tmp_path), **url)
    assert on.returncode == 0, on.stderr
    assert on.stdout.strip().splitlines()[-1] == (
        "600 True [('prepare_threshold', 2), ('server_side_binding', True)]"
    )
    off = manage(
        "shell",
        "-c",
        show,
        PEDIGREE_DATA_DIR=str(tmp_path),
        DATABASE_PREPARED_STATEMENTS="false",
        DATABASE_CONN_MAX_AGE="0",
        **url,
    )
    assert off.stdout.strip().splitlines()[-1] == "0 True []"
