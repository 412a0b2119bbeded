"""The cards of the Hub datasets a model card names as training data (`datasets:`), read from
the local Hugging Face cache only: their `license:` is the licence evidence of the reference
dataset versions an import records. Nothing here reaches the network; a dataset whose card is
not in the cache is recorded with no licence information (NOASSERTION)."""

from dataclasses import dataclass
from pathlib import Path

import yaml
from huggingface_hub import DatasetCard
from huggingface_hub.file_download import repo_folder_name

from registry.hub.cards import CARD_FILE, MAX_CARD_SIZE
from registry.hub.licences import NO_ASSERTION
from registry.hub.snapshot import REVISION_SHA, dataset_url
from registry.plugins import HubLicenceResolution, plugins


@dataclass(frozen=True)
class DatasetLicence:
    """The licence a Hub dataset's card declares, as an SPDX expression, and where it came from."""

    hub_id: str
    expression: str
    # The card's revision in the cache, or '' when no card was found.
    revision: str
    reason: str

    @property
    def uri(self) -> str:
        url = dataset_url(self.hub_id)
        return f"{url}/tree/{self.revision}" if self.revision else url

    def to_dict(self) -> dict[str, str]:
        return {
            "hub_id": self.hub_id,
            "expression": self.expression,
            "revision": self.revision,
            "reason": self.reason,
        }


def dataset_licence(hub_id: str, *, caches: list[Path]) -> DatasetLicence:
    """The licence of Hub dataset `hub_id` from its card in the first of `caches` (Hugging Face
    cache folders) holding one; NOASSERTION when none does or the card says nothing usable."""
    for cache in caches:
        found = _cached_card(cache, hub_id)
        if found is not None:
            revision, text = found
            return _from_card(hub_id, revision, text)
    return DatasetLicence(
        hub_id=hub_id,
        expression=NO_ASSERTION,
        revision="",
        reason=f"The card of the Hub dataset {hub_id} is not in the local Hugging Face cache, so "
        "its licence is unknown; download it (`hf download --repo-type dataset "
        f"{hub_id} README.md`) before importing, or ask compliance to conclude its licence.",
    )


def _cached_card(cache: Path, hub_id: str) -> tuple[str, str] | None:
    """(revision, card text) of the dataset in the cache at `refs/main`, else its only snapshot.
    Every path is resolved and must stay inside the dataset's cache folder before it is read."""
    repo = cache / repo_folder_name(repo_id=hub_id, repo_type="dataset")
    try:
        boundary = repo.resolve()
        # The dataset's folder itself may be a symlink: it must stay inside the cache.
        if not repo.is_dir() or not boundary.is_relative_to(cache.resolve()):
            return None
        ref = repo / "refs" / "main"
        revision = ""
        if ref.is_file() and _inside(ref, boundary) and ref.stat().st_size <= 64:
            revision = ref.read_text(encoding="ascii", errors="replace").strip()
        if not REVISION_SHA.match(revision):
            snapshots = repo / "snapshots"
            names = [p.name for p in snapshots.iterdir()] if snapshots.is_dir() else []
            shas = [name for name in names if REVISION_SHA.match(name)]
            if len(shas) != 1:
                return None
            revision = shas[0]
        card = repo / "snapshots" / revision / CARD_FILE
        if not card.is_file() or not _inside(card, boundary):
            return None
        if card.stat().st_size > MAX_CARD_SIZE:
            return None
        return revision, card.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _inside(path: Path, boundary: Path) -> bool:
    return path.resolve().is_relative_to(boundary)


def _from_card(hub_id: str, revision: str, text: str) -> DatasetLicence:
    where = f"the card of the Hub dataset {hub_id} at {revision[:12]}"
    try:
        data = DatasetCard(text).data.to_dict()
    except (yaml.YAMLError, ValueError, TypeError):
        data = {}
    declared = data.get("license")
    ids = [declared] if isinstance(declared, str) else declared
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        return DatasetLicence(
            hub_id, NO_ASSERTION, revision, f"{where} declares no licence (no `license:`)."
        )
    name, link = data.get("license_name"), data.get("license_link")
    expressions, reasons = [], []
    for hub_licence in dict.fromkeys(i.strip() for i in ids):
        expression, reason = _resolve(
            hub_licence,
            license_name=name if isinstance(name, str) else None,
            license_link=link if isinstance(link, str) else None,
        )
        expressions.append(expression)
        if reason:
            reasons.append(reason)
    # Several licences on a dataset card usually cover different parts of the data: all bind.
    expression = " AND ".join(
        f"({item})" if " OR " in item and len(expressions) > 1 else item for item in expressions
    )
    reason = f"From {where}: license {', '.join(ids)}" + (
        f" ({'; '.join(reasons)})" if reasons else ""
    )
    return DatasetLicence(hub_id, expression, revision, reason)


def _resolve(
    hub_licence: str, *, license_name: str | None, license_link: str | None
) -> tuple[str, str]:
    resolutions = plugins.contributions(HubLicenceResolution)
    if not resolutions:
        return NO_ASSERTION, f"no licence catalogue is installed to map {hub_licence!r}"
    try:
        result = resolutions[0].resolve(
            hub_licence, license_name=license_name, license_link=license_link
        )
    except ValueError as error:
        return NO_ASSERTION, f"{hub_licence!r}: {error}"
    return result.expression, result.reason if result.review_required else ""
