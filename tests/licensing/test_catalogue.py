"""The licence catalogue: data validation, curated terms, SPDX coverage and Hub licence ids."""

import copy
import json

import pytest
import yaml
from jsonschema import Draft202012Validator
from license_expression import get_license_index

from licensing.catalogue import (
    CATEGORIES,
    RELATIONS,
    TERM_TYPES,
    CatalogueError,
    LicenceError,
    get_licence,
    hub_licence_ids,
    load_catalogue,
    resolve_hub_licence,
    validate_catalogue_data,
)
from licensing.catalogue.loader import DATA_FILE
from licensing.catalogue.validation import SCHEMA_FILE
from licensing.expressions import parse_expression

# Every licence id the Hugging Face Hub lists.
HUB_IDS = [
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m",
    "bigscience-bloom-rail-1.0", "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0",
    "bsd", "bsd-2-clause", "bsd-3-clause", "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0",
    "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0",
    "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-3.0",
    "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0",
    "cdla-sharing-1.0", "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl", "ecl-2.0",
    "epl-1.0", "epl-2.0", "etalab-2.0", "eupl-1.1", "eupl-1.2", "agpl-3.0", "gfdl", "gpl",
    "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1", "lgpl-3.0", "isc", "h-research", "intel-research",
    "lppl-1.3c", "ms-pl", "apple-ascl", "apple-amlr", "mpl-2.0", "odc-by", "odbl",
    "openmdw-1.0", "openrail++", "osl-3.0", "postgresql", "ofl-1.1", "ncsa", "unlicense",
    "zlib", "pddl", "lgpl-lr", "deepfloyd-if-license", "fair-noncommercial-research-license",
    "llama2", "llama3", "llama3.1", "llama3.2", "llama3.3", "llama4", "gemma", "unknown", "other",
]  # fmt: skip

AMBIGUOUS_HUB_IDS = ["gpl", "gpl-3.0", "lgpl", "gfdl", "bsd", "cc", "openrail", "other", "unknown"]

REQUIRED_CURATED = [
    "LicenseRef-Llama-2", "LicenseRef-Llama-3", "LicenseRef-Llama-3.1", "LicenseRef-Llama-3.2",
    "LicenseRef-Llama-3.3", "LicenseRef-Gemma", "LicenseRef-BigScience-OpenRAIL-M",
    "LicenseRef-CreativeML-OpenRAIL-M", "LicenseRef-BigCode-OpenRAIL-M",
    "LicenseRef-OpenRAIL-PlusPlus", "LicenseRef-BLOOM-RAIL-1.0", "LicenseRef-OpenRAIL",
    "LicenseRef-Apple-ASCL", "LicenseRef-DeepFloyd-IF", "LicenseRef-Unknown", "LicenseRef-Other",
    "Apache-2.0", "MIT", "BSD-2-Clause", "BSD-3-Clause", "CC0-1.0", "CC-BY-4.0", "CC-BY-SA-4.0",
    "CC-BY-NC-4.0", "CC-BY-NC-SA-4.0", "CC-BY-NC-ND-4.0", "CC-BY-ND-4.0", "CC-BY-3.0",
    "CC-BY-SA-3.0", "CC-BY-NC-2.0", "CC-BY-NC-3.0", "GPL-2.0-only", "GPL-2.0-or-later",
    "GPL-3.0-only", "GPL-3.0-or-later", "LGPL-2.1-only", "LGPL-3.0-only", "AGPL-3.0-only",
    "MPL-2.0", "EPL-2.0", "ODbL-1.0", "ODC-By-1.0", "PDDL-1.0", "Artistic-2.0",
]  # fmt: skip

MODEL_DERIVATIONS = {"finetune", "adapter", "merge", "quantized", "distillation"}


def shipped_data():
    with DATA_FILE.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def only_term(licence_id, term_type):
    terms = get_licence(licence_id).terms_of_type(term_type)
    assert len(terms) == 1, f"{licence_id} has {len(terms)} {term_type} terms"
    return terms[0]


# ------------------------------------------------------------------ the data file


def test_shipped_catalogue_validates():
    validate_catalogue_data(shipped_data())


def test_schema_is_valid_and_has_the_vocabularies_of_the_code():
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    vocabularies = {
        name: tuple(schema["$defs"][name]["enum"]) for name in ("category", "term_type", "relation")
    }
    assert vocabularies == {"category": CATEGORIES, "term_type": TERM_TYPES, "relation": RELATIONS}


def test_a_problem_names_the_file_the_path_and_what_was_expected():
    data = copy.deepcopy(shipped_data())
    licence = data["licences"][0]
    licence["terms"][0]["carries_through"] = ["forked"]
    with pytest.raises(CatalogueError) as excinfo:
        validate_catalogue_data(data)
    assert str(excinfo.value) == (
        "Invalid licence catalogue ml_licences.yaml:\n"
        f"- licences[0] ({licence['id']}).terms[0] ({licence['terms'][0]['type']})"
        ".carries_through[0]: unknown relation 'forked' (one of finetune, adapter, quantized, "
        "merge, distillation, continued_pretraining, trained_on)"
    )


def test_every_entry_uses_the_vocabularies():
    for entry in load_catalogue():
        assert entry.category in CATEGORIES, entry.id
        assert isinstance(entry.review_required, bool)
        for term in entry.terms:
            assert term.type in TERM_TYPES
            assert term.clause and term.text
            assert set(term.carries_through) <= set(RELATIONS)


def test_catalogue_covers_every_spdx_licence():
    spdx_ids = {
        item["spdx_license_key"]
        for item in get_license_index()
        if item.get("spdx_license_key")
        and not item["spdx_license_key"].startswith("LicenseRef-")
        and not item.get("is_exception")
    }
    catalogue_ids = {entry.id for entry in load_catalogue()}
    assert spdx_ids <= catalogue_ids
    assert len(spdx_ids) > 600


def test_curated_licences_are_present_and_marked_curated():
    for licence_id in REQUIRED_CURATED:
        entry = get_licence(licence_id)
        assert entry.id == licence_id
        assert entry.curated


def test_scancode_licence_refs_are_not_in_the_catalogue():
    assert not any(entry.id.startswith("LicenseRef-scancode") for entry in load_catalogue())


def test_entries_serialise_to_json():
    payload = json.dumps([entry.to_dict() for entry in load_catalogue()])
    llama = next(item for item in json.loads(payload) if item["id"] == "LicenseRef-Llama-3.1")
    assert {"type", "clause", "text", "carries_through"} <= set(llama["terms"][0])


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["licences"][0].update(category="open"), "unknown category 'open'"),
        (lambda d: d["licences"][0]["terms"][0].update(type="credit"), "unknown term type"),
        (
            lambda d: d["licences"][0]["terms"][0].update(carries_through=["forked"]),
            "unknown relation 'forked'",
        ),
        (lambda d: d["licences"][0].update(id="Apache-2"), "not an SPDX licence id"),
        (lambda d: d["licences"][0].update(id="LicenseRef-Open++"), "only letters, digits"),
        (lambda d: d["licences"].append(copy.deepcopy(d["licences"][0])), "defined twice"),
        (lambda d: d["licences"][0].update(review_required="no"), "review_required"),
        (lambda d: d["licences"][0].update(licence="typo"), "unknown key 'licence'"),
        (lambda d: d["hub_licences"].update(mit={"licence": "MITT"}), "'MITT' is not"),
        (
            lambda d: d["hub_licences"].update(
                gpl={"licence": "GPL-3.0-only", "review_required": True}
            ),
            "must give a reason",
        ),
        (lambda d: d["hub_licences"].pop("other"), "must map 'other'"),
        (lambda d: d["other_licence_names"].update(acme="LicenseRef-Acme"), "not a licence"),
        (lambda d: d["relation_sets"].update(bad=["finetune", "fork"]), "unknown relation 'fork'"),
        (lambda d: d.update(extra=1), "unknown top-level key 'extra'"),
    ],
)
def test_invalid_data_is_refused(mutate, expected):
    data = copy.deepcopy(shipped_data())
    mutate(data)
    with pytest.raises(CatalogueError) as excinfo:
        validate_catalogue_data(data)
    assert expected in str(excinfo.value)


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ({"type": "naming_prefix"}, "needs a value"),
        ({"type": "attribution", "value": "x"}, "takes no value"),
        ({"type": "user_threshold", "value": "700M"}, "positive integer"),
        ({"type": "aup_reference", "value": "ftp://example.org"}, "https URL"),
    ],
)
def test_term_values_are_checked(term, expected):
    data = copy.deepcopy(shipped_data())
    base = {"clause": "§1", "text": "Something.", "carries_through": []}
    data["licences"][0]["terms"] = [base | term]
    with pytest.raises(CatalogueError, match=expected):
        validate_catalogue_data(data)


# ------------------------------------------------------------------ curated terms


def test_llama_31_naming_prefix_carries_through_derivations():
    term = only_term("LicenseRef-Llama-3.1", "naming_prefix")
    assert term.value == "Llama"
    assert "§1.b.i" in term.clause
    assert "Llama 3.1" in term.clause
    assert set(term.carries_through) >= MODEL_DERIVATIONS


def test_llama_31_display_badge_aup_and_user_threshold():
    assert only_term("LicenseRef-Llama-3.1", "display_badge").value == "Built with Llama"
    aup = only_term("LicenseRef-Llama-3.1", "aup_reference")
    assert "§1.b.iv" in aup.clause
    assert aup.value.startswith("https://")
    threshold = only_term("LicenseRef-Llama-3.1", "user_threshold")
    assert threshold.value == 700_000_000
    assert threshold.clause.endswith("§2")
    assert threshold.attestation  # a fact only the releasing team knows


def test_output_training_ban_is_in_llama_2_and_3_but_not_later():
    assert "§1.b.v" in only_term("LicenseRef-Llama-2", "no_output_training").clause
    assert "§1.b.v" in only_term("LicenseRef-Llama-3", "no_output_training").clause
    for licence_id in ("LicenseRef-Llama-3.1", "LicenseRef-Llama-3.2", "LicenseRef-Llama-3.3"):
        assert not get_licence(licence_id).terms_of_type("no_output_training")


def test_llama_2_has_no_naming_or_badge_terms():
    llama2 = get_licence("LicenseRef-Llama-2")
    assert not llama2.terms_of_type("naming_prefix")
    assert not llama2.terms_of_type("display_badge")
    assert only_term("LicenseRef-Llama-3", "naming_prefix").value == "Llama 3"


def test_cc_by_nc_4_non_commercial_follows_training_data():
    term = only_term("CC-BY-NC-4.0", "non_commercial")
    assert term.clause == "CC BY-NC 4.0 §2(a)(1)"
    assert term.carries_through_relation("trained_on")
    assert get_licence("CC-BY-NC-4.0").category == "non_commercial"


def test_share_alike_and_no_derivatives_follow_training_data():
    assert only_term("CC-BY-SA-4.0", "share_alike").carries_through_relation("trained_on")
    assert only_term("CC-BY-ND-4.0", "no_derivatives").carries_through_relation("trained_on")


def test_software_licence_terms_do_not_follow_training_data():
    for term in get_licence("Apache-2.0").terms:
        assert not term.carries_through_relation("trained_on")


@pytest.mark.parametrize(
    "licence_id",
    [
        "LicenseRef-Gemma",
        "LicenseRef-BigScience-OpenRAIL-M",
        "LicenseRef-CreativeML-OpenRAIL-M",
        "LicenseRef-OpenRAIL-PlusPlus",
        "LicenseRef-BLOOM-RAIL-1.0",
        "LicenseRef-BigCode-OpenRAIL-M",
        "LicenseRef-OpenRAIL",
    ],
)
def test_use_restricted_model_licences_pass_restrictions_down(licence_id):
    entry = get_licence(licence_id)
    assert entry.category == "use_restricted"
    term = only_term(licence_id, "use_restrictions_passdown")
    assert set(term.carries_through) >= MODEL_DERIVATIONS


def test_generic_and_placeholder_licences_need_review():
    for licence_id in ("LicenseRef-OpenRAIL", "LicenseRef-Unknown", "LicenseRef-Other"):
        assert get_licence(licence_id).review_required


# ------------------------------------------------------------------ rule-categorised SPDX licences


@pytest.mark.parametrize(
    ("licence_id", "category"),
    [
        ("CC-BY-NC-1.0", "non_commercial"),
        ("CC-BY-NC-SA-2.5", "non_commercial"),
        ("CC-BY-ND-3.0", "use_restricted"),
        ("CC-BY-SA-2.5", "copyleft"),
        ("GPL-1.0-or-later", "copyleft"),
        ("LGPL-2.0-only", "weak_copyleft"),
        ("0BSD", "permissive"),
        ("EPL-1.0", "weak_copyleft"),
    ],
)
def test_uncurated_spdx_licences_get_a_rule_category(licence_id, category):
    entry = get_licence(licence_id)
    assert not entry.curated
    assert entry.category == category
    assert entry.terms == ()
    assert entry.notes.startswith("Not curated")


def test_restricted_uncurated_licences_need_review():
    assert get_licence("C-UDA-1.0").review_required


# ------------------------------------------------------------------ lookups


def test_get_licence_is_case_insensitive_and_knows_deprecated_aliases():
    assert get_licence("apache-2.0").id == "Apache-2.0"
    assert get_licence("licenseref-llama-3.1").id == "LicenseRef-Llama-3.1"
    assert get_licence("GPL-2.0+").id == "GPL-2.0-or-later"


def test_get_licence_refuses_unknown_ids():
    with pytest.raises(LicenceError, match="'LicenseRef-Acme' is not in the licence catalogue"):
        get_licence("LicenseRef-Acme")


# ------------------------------------------------------------------ Hugging Face Hub ids


def test_every_hub_id_is_mapped():
    assert set(hub_licence_ids()) == set(HUB_IDS)


@pytest.mark.parametrize("hub_id", HUB_IDS)
def test_every_hub_id_maps_to_a_parseable_expression(hub_id):
    resolved = resolve_hub_licence(hub_id)
    parsed = parse_expression(resolved.expression)
    assert parsed.normalized == resolved.expression
    assert resolved.reason


@pytest.mark.parametrize("hub_id", AMBIGUOUS_HUB_IDS)
def test_ambiguous_hub_ids_need_review(hub_id):
    resolved = resolve_hub_licence(hub_id)
    assert resolved.review_required
    assert len(resolved.reason) > 20


@pytest.mark.parametrize(
    ("hub_id", "expression"),
    [
        ("apache-2.0", "Apache-2.0"),
        ("llama3.1", "LicenseRef-Llama-3.1"),
        ("cc-by-nc-4.0", "CC-BY-NC-4.0"),
        ("openrail++", "LicenseRef-OpenRAIL-PlusPlus"),
        ("lgpl-lr", "LGPLLR"),
        ("Apache-2.0", "Apache-2.0"),
    ],
)
def test_clear_hub_ids_map_without_review(hub_id, expression):
    resolved = resolve_hub_licence(hub_id)
    assert resolved.expression == expression
    assert not resolved.review_required


def test_gpl_3_assumes_only_and_says_so():
    resolved = resolve_hub_licence("gpl-3.0")
    assert resolved.expression == "GPL-3.0-only"
    assert "or any later version" in resolved.reason


def test_missing_licence_is_unknown_and_needs_review():
    for hub_id in (None, "", "  "):
        resolved = resolve_hub_licence(hub_id)
        assert resolved.expression == "LicenseRef-Unknown"
        assert resolved.review_required
        assert resolved.reason == "the model card declares no licence"


def test_unknown_hub_id_is_refused():
    with pytest.raises(LicenceError, match=r"'apache-3\.0' is not a Hugging Face Hub licence id"):
        resolve_hub_licence("apache-3.0")


@pytest.mark.parametrize(
    ("license_name", "expression"),
    [
        ("llama3", "LicenseRef-Llama-3"),
        ("gemma-terms-of-use", "LicenseRef-Gemma"),
        ("Llama 3.1 Community License", "LicenseRef-Llama-3.1"),
        ("apache-2.0", "Apache-2.0"),
        ("CC-BY-NC-4.0", "CC-BY-NC-4.0"),
    ],
)
def test_other_with_a_known_name_is_recognised(license_name, expression):
    resolved = resolve_hub_licence("other", license_name=license_name, license_link="LICENSE")
    assert resolved.expression == expression
    assert not resolved.review_required
    assert resolved.license_name == license_name
    assert resolved.license_link == "LICENSE"


def test_other_with_a_known_link_is_recognised():
    resolved = resolve_hub_licence("other", license_link="https://ai.google.dev/gemma/terms/")
    assert resolved.expression == "LicenseRef-Gemma"


def test_other_with_an_unknown_name_needs_review_and_keeps_name_and_link():
    resolved = resolve_hub_licence(
        "other", license_name="acme-model-licence", license_link="https://acme.example/licence"
    )
    assert resolved.expression == "LicenseRef-Other"
    assert resolved.review_required
    assert "acme-model-licence" in resolved.reason
    assert resolved.to_dict()["license_link"] == "https://acme.example/licence"


def test_other_without_a_name_needs_review():
    resolved = resolve_hub_licence("other")
    assert resolved.expression == "LicenseRef-Other"
    assert resolved.review_required
    assert "license_name" in resolved.reason


def test_hub_id_mapping_to_a_licence_under_review_is_flagged():
    resolved = resolve_hub_licence("intel-research")
    assert resolved.review_required
    assert "LicenseRef-Intel-Research" in resolved.reason
