"""Lineage at scale on PostgreSQL: recursive walks and hold propagation over a synthetic DAG.

Builds (once; reused by later runs) a DAG of 100 000 versions in 1 000 models: 200 root base
models, one of which has 10 000+ descendants, chains up to 50 generations deep, and merges
(5 % of versions have a second parent, a fifth of those from another family). Then times:

* ancestors of the deepest version of the big family (one recursive query),
* descendants of the big base (one recursive query),
* hold propagation over the big base's descendants (`hold_place`: one INSERT … SELECT),
  and lifting it again, inside a transaction rolled back afterwards,
* the cycle check and insertion of one new edge, the path between base and deepest version,
  and the depth-limited neighbourhood the admin picture draws,

printing the median of several runs, the number of SQL queries each took, and the targets.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pedigree_bench \\
        .venv/bin/python bench/bench_lineage.py [--versions 100000] [--repeats 15] [--rebuild]

The database is created when missing; `--rebuild` drops and recreates it first (only for a
database whose name contains "bench"). A database holding other data is never written to.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/pedigree_bench"
os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

ROOTS = 200
VERSIONS_PER_MODEL = 100
MAX_DEPTH = 50
BIG_FAMILY_SHARE = 0.12
MERGE_SHARE = 0.05
CROSS_FAMILY_MERGE_SHARE = 0.2
SINGLE_RELATIONS = ["finetune", "adapter", "quantized", "continued_pretraining", "distillation"]
TARGET_WALK_MS = 50
TARGET_HOLD_S = 2.0
SEED = 20261122


def ensure_database(url: str, *, rebuild: bool) -> None:
    """Create the benchmark database if it does not exist (drop it first with --rebuild)."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if exists and rebuild:
            connection.execute(
                sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name))
            )
            exists = None
        if not exists:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


def generate(total: int, rng: random.Random) -> tuple[list[list[tuple[int, str]]], list[int]]:
    """Parents of each version (by index, always earlier ones, so the graph is a DAG) and each
    version's depth. Version 0 is the big base."""
    parents: list[list[tuple[int, str]]] = [[] for _ in range(total)]
    depth = [0] * total
    family_of = list(range(ROOTS)) + [0] * (total - ROOTS)
    members: list[list[int]] = [[root] for root in range(ROOTS)]
    for index in range(ROOTS, total):
        family = 0 if rng.random() < BIG_FAMILY_SHARE else rng.randrange(1, ROOTS)
        pool = members[family]
        # Half the time extend the newest member: that grows long chains.
        parent = pool[-1] if rng.random() < 0.5 else rng.choice(pool)
        if depth[parent] >= MAX_DEPTH:
            parent = rng.choice([m for m in pool[-200:] if depth[m] < MAX_DEPTH] or [family])
        chosen = [parent]
        if rng.random() < MERGE_SHARE:
            other_family = (
                rng.randrange(ROOTS) if rng.random() < CROSS_FAMILY_MERGE_SHARE else family
            )
            other = rng.choice(members[other_family])
            if other != parent and depth[other] < MAX_DEPTH:
                chosen.append(other)
        if len(chosen) == 2:
            parents[index] = [(p, "merge") for p in chosen]
        else:
            parents[index] = [(parent, rng.choice(SINGLE_RELATIONS))]
        depth[index] = max(depth[p] for p in chosen) + 1
        family_of[index] = family
        pool.append(index)
    return parents, depth


def build(total: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from lineage.models import LineageEdge
    from registry.models import ModelVersion, RegisteredModel, Team

    rng = random.Random(SEED)
    started = time.perf_counter()
    parents, depth = generate(total, rng)
    user_model = get_user_model()
    with transaction.atomic():
        owner = user_model.objects.create_user("bench-engineer")
        user_model.objects.create_superuser("bench-compliance", password=None)
        team = Team.objects.create(slug="bench", name="Benchmark")
        team.members.add(owner)
        # Each root is the one version of an upstream model; derived versions fill derived
        # models of VERSIONS_PER_MODEL versions each.
        derived_models = -(-(total - ROOTS) // VERSIONS_PER_MODEL)
        models = RegisteredModel.objects.bulk_create(
            RegisteredModel(
                name=f"bench/{'base' if number < ROOTS else 'model'}-{number:04d}",
                kind="upstream" if number < ROOTS else "derived",
                team=team,
                visibility="internal",
                created_by=owner,
            )
            for number in range(ROOTS + derived_models)
        )
        ids: list[int] = []
        batch: list[ModelVersion] = []
        for index in range(total):
            if index < ROOTS:
                model, label = models[index], "main"
            else:
                number, position = divmod(index - ROOTS, VERSIONS_PER_MODEL)
                model, label = models[ROOTS + number], f"v{position}"
            batch.append(
                ModelVersion(
                    model=model,
                    version=label,
                    artefact_digest=rng.randbytes(32).hex(),
                    licence_declared="Apache-2.0",
                    registered_by=owner,
                )
            )
            if len(batch) == 10_000 or index == total - 1:
                ids += [v.pk for v in ModelVersion.objects.bulk_create(batch)]
                batch = []
        digests = dict(ModelVersion.objects.values_list("pk", "artefact_digest"))
        rows = io.StringIO()
        for index, links in enumerate(parents):
            for parent, relation in links:
                rows.write(
                    f"{ids[index]}\t{ids[parent]}\t{relation}\t{digests[ids[parent]]}\t"
                    f"{owner.pk}\t2026-11-22 00:00:00+00\tf\t[]\tf\n"
                )
        table = LineageEdge._meta.db_table
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(
                f"COPY {table} (child_id, parent_id, relation, parent_digest, created_by_id, "
                "created_at, relation_inferred, relation_evidence, parent_newest) FROM STDIN"
            ) as copy,
        ):
            copy.write(rows.getvalue())
    # What autovacuum would do soon after a bulk load: statistics for the planner and a
    # visibility map, so the walks can use index-only scans.
    with connection.cursor() as cursor:
        for model in (LineageEdge, ModelVersion, RegisteredModel):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
    edges = sum(len(links) for links in parents)
    print(
        f"built {total:,} versions, {edges:,} edges, max depth {max(depth)} "
        f"in {time.perf_counter() - started:.1f} s"
    )


def timed(run: Callable[[], object], repeats: int) -> tuple[float, int, object]:
    """Median milliseconds over `repeats` runs after one warm-up, queries of one run, result."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    result = run()
    with CaptureQueriesContext(connection) as queries:
        run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), len(queries.captured_queries), result


def rolled_back(work: Callable[[], object]) -> Callable[[], object]:
    """Run `work` in a transaction that is rolled back, so the database stays as built."""
    from django.db import transaction

    def run():
        with transaction.atomic():
            result = work()
            transaction.set_rollback(True)
        return result

    return run


def report(name: str, size: str, ms: float, queries: int, target: str, ok: bool | None) -> None:
    verdict = "" if ok is None else ("  OK" if ok else "  MISSED")
    print(f"{name:<44} {size:>16} {ms:>10.1f} ms {queries:>4} queries   {target}{verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--rebuild", action="store_true", help="drop and rebuild the database")
    args = parser.parse_args()
    url = os.environ["DATABASE_URL"]
    if not url.startswith(("postgres://", "postgresql://")):
        print(f"bench_lineage needs PostgreSQL; DATABASE_URL is {url!r}")
        return 2
    if args.rebuild and "bench" not in urlsplit(url).path:
        # Never drop a database that is not obviously a benchmark's own.
        print("--rebuild drops the database: name one with 'bench' in it, e.g. pedigree_bench")
        return 2
    try:
        ensure_database(url, rebuild=args.rebuild)
    except Exception as error:  # report and stop: a benchmark never fails the build
        print(f"bench_lineage skipped: cannot reach PostgreSQL at {url} ({error})")
        return 0

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from lineage import selectors, services
    from lineage.models import LineageEdge
    from registry.models import ModelVersion

    call_command("migrate", verbosity=0)
    if ModelVersion.objects.filter(model__team__slug="bench").count() != args.versions:
        if ModelVersion.objects.exists():
            print("the database holds other data; rerun with --rebuild")
            return 2
        build(args.versions)

    compliance = get_user_model().objects.get(username="bench-compliance")
    engineer = get_user_model().objects.get(username="bench-engineer")
    base = ModelVersion.objects.order_by("pk").first()
    with connection.cursor() as cursor:
        # The deepest version among the big base's descendants.
        cursor.execute(
            "WITH RECURSIVE walk(id, depth) AS (SELECT %s::bigint, 0 UNION ALL "
            "SELECT e.child_id, w.depth + 1 FROM lineage_lineageedge e JOIN walk w "
            "ON e.parent_id = w.id WHERE w.depth < 60) "
            "SELECT id, depth FROM walk ORDER BY depth DESC, id LIMIT 1",
            [base.pk],
        )
        deepest_id, deepest_depth = cursor.fetchone()
    deepest = ModelVersion.objects.get(pk=deepest_id)
    print(
        f"DAG: {ModelVersion.objects.count():,} versions, "
        f"{LineageEdge.objects.count():,} edges; big base {base}; deepest of its descendants "
        f"{deepest} at depth {deepest_depth}; PostgreSQL {connection.pg_version // 10000}; "
        f"median of {args.repeats} runs"
    )
    print(f"{'':<44} {'result':>16} {'median':>13} {'SQL':>12}   target")

    for name, walk, start in (
        ("ancestors of the deepest version", selectors.ancestor_ids, deepest),
        ("descendants of the big base", selectors.descendant_ids, base),
    ):
        ms, queries, ids = timed(
            lambda walk=walk, start=start: selectors.fetch_ids(walk(start.pk)), args.repeats
        )
        report(
            f"{name}: the walk (ids)",
            f"{len(ids):,} versions",
            ms,
            queries,
            f"< {TARGET_WALK_MS} ms",
            ms < TARGET_WALK_MS,
        )
        relatives = (
            selectors.ancestors_of if walk is selectors.ancestor_ids else (selectors.descendants_of)
        )
        for user, who in ((compliance, "compliance"), (engineer, "an engineer")):
            ms, queries, ids = timed(
                lambda user=user, start=start, relatives=relatives: list(
                    relatives(user, start).values_list("pk", flat=True)
                ),
                args.repeats,
            )
            report(
                f"  … as {who} sees them, API order (ids)",
                f"{len(ids):,} versions",
                ms,
                queries,
                "",
                None,
            )
        ms, queries, rows = timed(
            lambda start=start, relatives=relatives: list(relatives(compliance, start)),
            args.repeats,
        )
        report(
            "  … as model rows (select_related)", f"{len(rows):,} versions", ms, queries, "", None
        )

    hold_repeats = max(3, args.repeats // 3)
    ms, queries, held = timed(
        rolled_back(
            lambda: selectors.held_count(
                services.hold_place(
                    actor=compliance,
                    version=base,
                    reason="benchmark: upstream licence withdrawn",
                    category="licence",
                )
            )
        ),
        hold_repeats,
    )
    report(
        "hold_place on the big base (propagation)",
        f"{held:,} held",
        ms,
        queries,
        f"< {TARGET_HOLD_S:.0f} s",
        ms < TARGET_HOLD_S * 1000,
    )

    def place_and_lift():
        hold = services.hold_place(actor=compliance, version=base, reason="benchmark")
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            services.hold_lift(actor=compliance, hold=hold, reason="benchmark over")
            elapsed = (time.perf_counter() - started) * 1000
        return elapsed, len(captured.captured_queries)

    lifts = [rolled_back(place_and_lift)() for _ in range(hold_repeats)]
    report(
        "hold_lift of that hold (one DELETE)",
        f"{held:,} released",
        statistics.median(ms for ms, _ in lifts),
        lifts[0][1],
        "",
        None,
    )

    def new_edge():
        child = ModelVersion.objects.create(
            model=deepest.model,
            version="bench-new",
            artefact_digest="0" * 64,
            registered_by=engineer,
        )
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            services.edge_create(actor=compliance, child=child, parent=deepest, relation="finetune")
            elapsed = (time.perf_counter() - started) * 1000
        return elapsed, len(captured.captured_queries)

    runs = [rolled_back(new_edge)() for _ in range(args.repeats)]
    report(
        "edge_create under the deepest version",
        "1 edge",
        statistics.median(ms for ms, _ in runs),
        runs[0][1],
        "cycle check, insert, holds",
        None,
    )
    ms, queries, path = timed(lambda: selectors.lineage_path(base, deepest), args.repeats)
    report(
        "path from big base to deepest version", f"{len(path.edges)} edges", ms, queries, "", None
    )
    ms, queries, graph = timed(
        lambda: selectors.lineage_graph(compliance, deepest, descendants_depth=2, max_nodes=60),
        args.repeats,
    )
    report(
        "admin picture neighbourhood of deepest",
        f"{len(graph.versions)} versions",
        ms,
        queries,
        "",
        None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
