"""What an answer about a version may not show a reader: the names, digests and hold reasons of
ancestors and training data they cannot see. Gate evaluations, recorded decisions and stored
compliance statuses are computed once for everyone (the gate must see every ancestor); this
rewrites them per reader when they are shown. Contributed to the core as `AnswerRedaction`."""

import re
from collections.abc import Callable
from typing import Any

from django.db.models import Value

from lineage.checks import hold_reason
from lineage.selectors import active_holds_on, ancestry
from registry.models import DatasetVersion, ModelVersion
from registry.selectors import is_compliance, owned_or_shared
from registry.types import Reader

HIDDEN_DIGEST = "(digest not visible to you)"


def _hidden(kind: str, pk: int) -> str:
    return f"{kind} version #{pk} (not visible to you)"


def hidden_relatives_redacted(reader: Reader, version: ModelVersion, data: Any) -> Any:
    """`data` with every ancestor and training dataset `reader` cannot see named
    `model version #N (not visible to you)`, their digests (and digest prefixes) removed, and
    holds placed on them stripped of reason and author. A bounded number of queries."""
    if is_compliance(reader):
        return data
    found = ancestry(version.pk)
    # One query whatever the family, run even for a root (0, an id no row has, keeps each list
    # non-empty) so the count never depends on the data: the ancestors and the data the reader
    # cannot see, with their digests. Each row is judged by the visibility rule itself (its
    # team, its visibility), not by excluding the set of every visible row, which in a registry
    # of 100 000 versions cost 70 ms to build for each answer.
    hidden_rows = (
        ModelVersion.objects.filter(pk__in=[0, *found.ancestors])
        .exclude(owned_or_shared(reader, "model__team_id", "model__visibility"))
        .annotate(kind=Value("model"))
        .order_by()
        .values_list("kind", "pk", "artefact_digest")
        .union(
            DatasetVersion.objects.filter(pk__in=[0, *found.datasets])
            .exclude(owned_or_shared(reader, "dataset__team_id", "dataset__visibility"))
            .annotate(kind=Value("dataset"))
            .order_by()
            .values_list("kind", "pk", "sha256")
        )
    )
    hidden = {(kind, pk): digest for kind, pk, digest in hidden_rows}
    if not hidden:
        return data
    hidden_models = {pk for kind, pk in hidden if kind == "model"}
    words = {
        (found.ancestors if kind == "model" else found.datasets)[pk].ref: _hidden(kind, pk)
        for kind, pk in hidden
    }
    for digest in filter(None, hidden.values()):
        # The model card and some reasons show a digest's first 16 characters: enough to know it.
        words[digest] = words[digest[:16]] = HIDDEN_DIGEST
    for hold in active_holds_on(version.pk).filter(version_id__in=hidden_models):
        words[hold_reason(hold, version.pk)] = (
            f"held through its ancestor {_hidden('model', hold.version_id)} (hold #{hold.pk})"
        )
    # Longest first, so a hold's whole line wins over the name inside it and a digest over its
    # prefix; a name only where it ends (`acme/m@v1` is not inside `acme/m@v10` or `…@v1.2`).
    alternatives = "|".join(re.escape(old) for old in sorted(words, key=len, reverse=True))
    pattern = re.compile(f"(?:{alternatives})(?![\\w-]|\\.\\w)")
    return _rewritten(
        data, lambda text: pattern.sub(lambda m: words[m.group(0)], text), hidden_models
    )


def _rewritten(value: Any, rewrite: Callable[[str], str], hidden_models: set[int]) -> Any:
    if isinstance(value, str):
        return rewrite(value)
    if isinstance(value, list | tuple):
        return [_rewritten(item, rewrite, hidden_models) for item in value]
    if isinstance(value, dict):
        if value.get("on_version_id") in hidden_models:
            # A hold's evidence entry (lineage_health): its reason and author are the team's.
            value = {**value, "reason": None, "placed_by": None}
        return {key: _rewritten(item, rewrite, hidden_models) for key, item in value.items()}
    return value
