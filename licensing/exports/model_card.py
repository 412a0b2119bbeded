"""A Hugging Face model card (README.md) whose YAML metadata `huggingface_hub.ModelCard` reads
back as written: license, base_model(_relation), datasets and model-index results."""

from __future__ import annotations

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from licensing.exports.bundle import ExportBundle
from licensing.models import HubLicenceMapping
from licensing.obligations import VersionObligations, base_licence_id, expression_alternatives
from licensing.validation import NO_ASSERTION

# The relations the Hub knows for base_model_relation; others are told in the card's text.
HUB_RELATIONS = {
    "finetune": "finetune",
    "continued_pretraining": "finetune",
    "adapter": "adapter",
    "quantized": "quantized",
    "merge": "merge",
}


def hub_licence(bundle: ExportBundle) -> dict[str, str]:
    """`license` (and `license_name`/`license_link` for `other`) for the version's licence."""
    expression = bundle.effective_licence(bundle.version)
    if expression == NO_ASSERTION:
        return {}  # as imported from a card without `license:`
    if not expression:
        return {"license": "unknown"}
    if " " not in expression:
        mapping = (
            HubLicenceMapping.objects.filter(licence__spdx_id=expression, review_required=False)
            .order_by("hub_id")
            .values_list("hub_id", flat=True)
            .first()
        )
        if mapping:
            return {"license": mapping}
    alternatives, _ = expression_alternatives(expression)
    first = bundle.licences.get(base_licence_id(alternatives[0][0])) if alternatives else None
    return {
        "license": "other",
        "license_name": expression,
        "license_link": first.url if first else "https://spdx.org/licenses/",
    }


def card_data(bundle: ExportBundle) -> ModelCardData:
    version = bundle.version
    edges = bundle.parents_of(version.pk)
    based_on = [edge for edge in edges if edge.relation in HUB_RELATIONS]
    relations = {HUB_RELATIONS[edge.relation] for edge in based_on}
    parents = [bundle.versions[edge.parent_id] for edge in based_on]
    datasets = []
    for use in bundle.trained_on(version.pk):
        dataset = use.dataset_version.dataset
        name = dataset.hub_id or dataset.name
        if use.dataset_version_id in bundle.visible_datasets and name not in datasets:
            datasets.append(name)
    # An imported upstream model's own training data, as its card named it.
    datasets += [name for name in version.hub_card.get("datasets") or [] if name not in datasets]
    extra = {}
    if parents:
        extra["base_model_relation"] = "merge" if "merge" in relations else sorted(relations)[0]
    results = [
        EvalResult(
            task_type=result.get("task") or version.model.task or "other",
            dataset_type=result.get("dataset_type") or result["dataset"],
            dataset_name=result["dataset"],
            dataset_split=result.get("split"),
            metric_type=result["metric"],
            metric_value=result["value"],
            # The Hub's card format takes a source's name only with its URL.
            source_name=result.get("source") if result.get("source_url") else None,
            source_url=result.get("source_url"),
        )
        for result in bundle.results
    ]
    return ModelCardData(
        model_name=version.model.name,
        base_model=(
            [
                parent.hub_repo_id or parent.model.name
                if parent.pk in bundle.visible_versions
                else f"version-{parent.pk}"
                for parent in parents
            ]
            or None
        ),
        datasets=datasets or None,
        eval_results=results or None,
        pipeline_tag=version.model.task or None,
        tags=["pedigree", *(["risk-" + version.risk_tier])],
        **hub_licence(bundle),
        **extra,
    )


def _section(title: str, body: str) -> str:
    return f"## {title}\n\n{body.strip()}\n" if body and body.strip() else ""


def card_text(bundle: ExportBundle, obligations: VersionObligations) -> str:
    version = bundle.version
    data = card_data(bundle)
    lineage = "\n".join(
        f"- {edge.relation} of `{bundle.version_label(bundle.versions[edge.parent_id])}` "
        + (
            f"(sha256 `{edge.parent_digest[:16]}…`)"
            if edge.parent_digest and edge.parent_id in bundle.visible_versions
            else "(its digest is not shown to you)"
            if edge.parent_digest
            else "(an unresolved upstream reference: not imported, no licence evidence)"
        )
        for edge in bundle.parents_of(version.pk)
    )
    training = "\n".join(
        f"- `{bundle.dataset_label(use.dataset_version)}` ({use.role}), licence "
        f"{bundle.effective_licence(use.dataset_version) or 'not declared'}"
        for use in bundle.uses_of(version.pk)
    )
    duties = "\n".join(
        f"- **{obligation.term.type.replace('_', ' ')}** ({obligation.licence.id}, "
        f"{obligation.term.clause}): {obligation.term.text} — via {obligation.path}"
        + (
            f" (if {' AND '.join(obligation.alternative)} is chosen)"
            if len(obligation.source.alternatives) > 1
            else ""
        )
        for obligation in obligations.obligations
    )
    licence = bundle.effective_licence(version) or "not declared"
    body = "\n".join(
        part
        for part in (
            f"# {version.model.name} {version.version}\n",
            f"{version.description.strip()}\n" if version.description.strip() else "",
            _section("Lineage", lineage),
            _section("Training data", training),
            _section("Intended use", version.intended_use),
            _section("Out-of-scope use", version.out_of_scope_uses),
            _section("Limitations", version.known_limitations),
            _section(
                "Licence",
                f"{licence}. Obligations this version carries, with where they come from:\n\n"
                + (duties or "- none recorded"),
            ),
            f"_Generated by Pedigree from the registry record of {version} "
            f"(artefact sha256 `{version.artefact_digest}`)._\n",
        )
        if part
    )
    return f"---\n{data.to_yaml()}\n---\n\n{body}"


def model_card(bundle: ExportBundle, obligations: VersionObligations) -> ModelCard:
    return ModelCard(card_text(bundle, obligations))
