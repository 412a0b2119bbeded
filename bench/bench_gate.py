"""The CI gate endpoint at scale on PostgreSQL: p50/p99 latency and SQL queries per request.

Reuses the synthetic registry of `bench_lineage.py` (100 000 versions, chains 50 deep, merges;
built on first use) and asks `GET /api/v1/versions/{id}/gate/?stage=production` through the
full Django stack (token auth, every registered gate check) for the deepest version, a mid
one and a root, many times each. Targets: p99 under 25 ms; the query count does not depend on
the registry size or the version's depth.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pedigree_bench \\
        .venv/bin/python bench/bench_gate.py
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/pedigree_bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

TARGET_P99_MS = 25
REQUESTS = 200


def main() -> int:
    import bench_lineage

    url = os.environ["DATABASE_URL"]
    if not url.startswith(("postgres://", "postgresql://")):
        print(f"bench_gate needs PostgreSQL; DATABASE_URL is {url!r}")
        return 2
    try:
        bench_lineage.ensure_database(url, rebuild=False)
    except Exception as error:  # a benchmark never fails the build
        print(f"bench_gate skipped: cannot reach PostgreSQL at {url} ({error})")
        return 0

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from registry.models import ModelVersion

    call_command("migrate", verbosity=0)
    total = 100_000
    if ModelVersion.objects.filter(model__team__slug="bench").count() != total:
        if ModelVersion.objects.exists():
            print("the database holds other data; run bench_lineage.py --rebuild first")
            return 2
        bench_lineage.build(total)

    user = get_user_model().objects.get(username="bench-compliance")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH RECURSIVE walk(id, depth) AS (SELECT %s::bigint, 0 UNION ALL "
            "SELECT e.child_id, w.depth + 1 FROM lineage_lineageedge e JOIN walk w "
            "ON e.parent_id = w.id WHERE w.depth < 60) "
            "SELECT id, depth FROM walk ORDER BY depth DESC, id LIMIT 1",
            [ModelVersion.objects.order_by("pk").first().pk],
        )
        deepest_id, depth = cursor.fetchone()
    root = ModelVersion.objects.order_by("pk").first()
    mid = ModelVersion.objects.order_by("pk")[total // 2]
    print(f"registry: {ModelVersion.objects.count():,} versions; {REQUESTS} requests each")
    print(f"{'version':<44} {'p50':>8} {'p99':>8} {'SQL':>5}   target p99 < {TARGET_P99_MS} ms")
    counts = set()
    for label, version_id in (
        (f"deepest (depth {depth})", deepest_id),
        ("middle of the registry", mid.pk),
        ("a root base model", root.pk),
    ):
        path = f"/api/v1/versions/{version_id}/gate/?stage=production&use=commercial"
        assert api.get(path).status_code == 200
        with CaptureQueriesContext(connection) as queries:
            api.get(path)
        sql = len(queries.captured_queries)
        counts.add(sql)
        times = []
        for _ in range(REQUESTS):
            started = time.perf_counter()
            api.get(path)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        p50 = statistics.median(times)
        p99 = times[int(len(times) * 0.99) - 1]
        verdict = "met" if p99 < TARGET_P99_MS else "MISSED"
        print(f"{label:<44} {p50:>6.1f}ms {p99:>6.1f}ms {sql:>5}   {verdict}")
    print(f"distinct query counts across versions: {sorted(counts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
