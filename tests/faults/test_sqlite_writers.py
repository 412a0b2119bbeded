"""The embedded default serves concurrent writers: a real gunicorn with two worker processes on
a file SQLite database, 8 clients registering at once, 0 errors."""

import sqlite3

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token

from registry.models import ModelVersion
from tests.faults.server import Server, register_concurrently

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_eight_concurrent_writers_through_two_web_processes_get_no_error(
    tmp_path, seeded, engineer, team
):
    if connection.vendor != "sqlite":
        pytest.skip("the embedded default's SQLite: runs when DATABASE_URL is unset")
    token = Token.objects.create(user=engineer).key
    # The migrated test database, users and tokens, copied to the file the server will open.
    connection.ensure_connection()
    target = sqlite3.connect(tmp_path / "pedigree.sqlite3")
    connection.connection.backup(target)
    target.close()
    server = Server(tmp_path, workers=2, threads=4)
    try:
        server.wait_ready()
        statuses = register_concurrently(
            server.url, token, clients=8, per_client=8, team=team.slug, prefix="busy"
        )
        log = server.log_text()
    finally:
        server.stop()

    assert statuses == {201: 64}, log
    served = sqlite3.connect(tmp_path / "pedigree.sqlite3")
    assert served.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    table = ModelVersion._meta.db_table
    assert served.execute(f"SELECT count(*) FROM {table}").fetchone() == (64,)  # noqa: S608
