"""SPDX licence expressions checked against the catalogue, and their alternatives (DNF)."""

import pytest

from licensing.expressions import (
    MAX_ALTERNATIVES,
    MAX_EXPRESSION_LENGTH,
    LicenceError,
    alternatives,
    parse_expression,
)


def test_valid_single_licence():
    parsed = parse_expression("Apache-2.0")
    assert parsed.normalized == "Apache-2.0"
    assert parsed.symbols == ["Apache-2.0"]
    assert parsed.exceptions == []


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("apache-2.0", "Apache-2.0"),
        ("  mit  ", "MIT"),
        ("licenseref-llama-3.1", "LicenseRef-Llama-3.1"),
        ("cc-by-nc-sa-4.0", "CC-BY-NC-SA-4.0"),
        ("mit or apache-2.0", "MIT OR Apache-2.0"),
        ("GPL-2.0", "GPL-2.0-only"),
        ("GPL-2.0+", "GPL-2.0-or-later"),
    ],
)
def test_ids_are_matched_case_insensitively_and_normalised(text, normalized):
    assert parse_expression(text).normalized == normalized


def test_and_or_with_parentheses():
    parsed = parse_expression("(MIT OR Apache-2.0) AND LicenseRef-Llama-3.1")
    assert parsed.normalized == "(MIT OR Apache-2.0) AND LicenseRef-Llama-3.1"
    assert parsed.symbols == ["MIT", "Apache-2.0", "LicenseRef-Llama-3.1"]
    assert parsed.licence_refs == ["LicenseRef-Llama-3.1"]


def test_with_exception():
    parsed = parse_expression("gpl-2.0-or-later with classpath-exception-2.0")
    assert parsed.normalized == "GPL-2.0-or-later WITH Classpath-exception-2.0"
    assert parsed.symbols == ["GPL-2.0-or-later"]
    assert parsed.exceptions == ["Classpath-exception-2.0"]


def test_symbols_are_listed_once():
    assert parse_expression("MIT AND (MIT OR Apache-2.0)").symbols == ["MIT", "Apache-2.0"]


@pytest.mark.parametrize(
    "text",
    [
        "MIT AND",
        "OR MIT",
        "MIT OR OR Apache-2.0",
        "(MIT",
        "MIT)",
        "()",
        "( AND MIT",
        "MIT Apache-2.0",
        "MIT/Apache-2.0",
        "MIT, Apache-2.0",
        "MIT WITH",
    ],
)
def test_invalid_syntax_is_refused(text):
    with pytest.raises(LicenceError, match="Invalid licence expression"):
        parse_expression(text)


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_expression_is_refused(text):
    with pytest.raises(LicenceError, match="empty"):
        parse_expression(text)


def test_overlong_expression_is_refused():
    with pytest.raises(LicenceError, match=str(MAX_EXPRESSION_LENGTH)):
        parse_expression(" OR ".join(["MIT"] * 600))


def test_unknown_symbol_is_named_with_the_fix():
    with pytest.raises(LicenceError) as excinfo:
        parse_expression("MIT OR Frobnicate-1.0")
    message = str(excinfo.value)
    assert "'Frobnicate-1.0'" in message
    assert "Use an SPDX id such as Apache-2.0" in message
    assert "LicenseRef- defined in the catalogue" in message
    assert excinfo.value.unknown_symbols == ("Frobnicate-1.0",)


def test_close_misspelling_gets_a_suggestion():
    with pytest.raises(LicenceError, match=r"did you mean 'Apache-2\.0'"):
        parse_expression("Apache2.0")


def test_licence_ref_outside_the_catalogue_is_refused():
    with pytest.raises(LicenceError) as excinfo:
        parse_expression("Apache-2.0 AND LicenseRef-Acme-Internal")
    assert "'LicenseRef-Acme-Internal' is not defined in the licence catalogue" in str(
        excinfo.value
    )
    assert excinfo.value.unknown_symbols == ("LicenseRef-Acme-Internal",)


def test_scancode_licence_refs_are_refused():
    with pytest.raises(LicenceError, match="LicenseRef-scancode-llama-2-license-2023"):
        parse_expression("LicenseRef-scancode-llama-2-license-2023")


def test_unknown_exception_is_named():
    with pytest.raises(LicenceError, match="'Frobnicate-exception'"):
        parse_expression("MIT WITH Frobnicate-exception")


@pytest.mark.parametrize("text", ["MIT WITH Apache-2.0", "Classpath-exception-2.0 AND MIT"])
def test_licences_and_exceptions_are_not_interchangeable(text):
    with pytest.raises(LicenceError, match="may follow WITH"):
        parse_expression(text)


def test_non_text_is_refused():
    with pytest.raises(LicenceError):
        parse_expression(None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("MIT", [["MIT"]]),
        ("MIT OR (GPL-2.0-only AND CC-BY-4.0)", [["MIT"], ["GPL-2.0-only", "CC-BY-4.0"]]),
        ("MIT AND Apache-2.0", [["MIT", "Apache-2.0"]]),
        (
            "(MIT OR Apache-2.0) AND (BSD-3-Clause OR ISC)",
            [
                ["MIT", "BSD-3-Clause"],
                ["MIT", "ISC"],
                ["Apache-2.0", "BSD-3-Clause"],
                ["Apache-2.0", "ISC"],
            ],
        ),
        (
            "LicenseRef-Llama-3.1 AND (CC-BY-4.0 OR CC-BY-NC-4.0)",
            [["LicenseRef-Llama-3.1", "CC-BY-4.0"], ["LicenseRef-Llama-3.1", "CC-BY-NC-4.0"]],
        ),
        (
            "GPL-2.0-only WITH Classpath-exception-2.0 OR MIT",
            [["GPL-2.0-only WITH Classpath-exception-2.0"], ["MIT"]],
        ),
    ],
)
def test_alternatives_are_the_disjunctive_normal_form(text, expected):
    assert alternatives(text) == expected
    assert parse_expression(text).alternatives() == expected


def test_alternatives_drop_redundant_choices():
    assert alternatives("MIT OR (MIT AND Apache-2.0)") == [["MIT"]]
    assert alternatives("MIT AND MIT") == [["MIT"]]
    assert alternatives("(MIT OR MIT) AND Apache-2.0") == [["MIT", "Apache-2.0"]]


def test_alternatives_use_canonical_ids():
    assert alternatives("mit or apache-2.0") == [["MIT"], ["Apache-2.0"]]


def test_alternatives_refuse_combinatorial_explosion():
    ids = [
        "MIT", "Apache-2.0", "ISC", "Zlib", "BSD-2-Clause", "BSD-3-Clause", "CC0-1.0",
        "CC-BY-4.0", "Unlicense", "0BSD", "MPL-2.0", "EPL-2.0", "GPL-2.0-only", "GPL-3.0-only",
        "LGPL-2.1-only", "LGPL-3.0-only", "AGPL-3.0-only", "PostgreSQL",
    ]  # fmt: skip
    explosive = " AND ".join(f"({a} OR {b})" for a, b in zip(ids[::2], ids[1::2], strict=True))
    assert 2 ** (len(ids) // 2) > MAX_ALTERNATIVES
    with pytest.raises(LicenceError, match="combinations"):
        alternatives(explosive)


def test_repeated_choices_do_not_count_as_combinations():
    repeated = " AND ".join("(MIT OR Apache-2.0)" for _ in range(12))
    assert alternatives(repeated) == [["MIT"], ["Apache-2.0"]]


def test_alternatives_of_invalid_text_raise():
    with pytest.raises(LicenceError):
        alternatives("MIT OR")
