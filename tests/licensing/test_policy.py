"""The licence check: obligations inherited through lineage and data, the default policy,
alternatives, waivers and the gate."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from licensing import services
from licensing.models import LicenceWaiver
from licensing.selectors import licence_check, version_obligations
from registry import services as registry_services
from registry.errors import InvalidInput, PermissionRefused
from registry.gates import gate_evaluate
from registry.models import COMPLIANCE_GROUP


def check(version, **context):
    context.setdefault("stage", "production")
    context.setdefault("use", "commercial")
    return licence_check(version=version, **context)


def errors(result) -> dict[str, list]:
    found: dict[str, list] = {}
    for violation in result.blocking:
        found.setdefault(violation.rule, []).append(violation)
    return found


def rules_of(result, severity=None) -> set[str]:
    return {
        v.rule
        for v in result.violations
        if (severity is None or v.severity == severity) and v.waiver is None
    }


# ------------------------------------------------------------------ the acceptance cases


def test_minilm_base_and_apache_finetune_pass_commercial_production(minilm, derive):
    tuned = derive("acme/support-intent", minilm, licence="Apache-2.0")
    for version in (minilm, tuned):
        result = check(version)
        assert result.passed, result.reasons()
        assert rules_of(result, "error") == set()
        assert rules_of(result, "warning") == set()
    obligations = version_obligations(tuned)
    inherited = [o for o in obligations.obligations if o.source.kind == "ancestor"]
    assert {o.term.type for o in inherited} == {
        "licence_copy",
        "state_changes",
        "attribution",
        "notice_file",
    }
    assert all(
        "—finetune→ sentence-transformers/all-MiniLM-L6-v2@main" in o.path for o in inherited
    )


def test_finetune_on_non_commercial_dataset_fails_commercial_use_naming_the_dataset_path(
    minilm, derive, dataset
):
    reviews = dataset("acme/reviews", "CC-BY-NC-4.0")
    tuned = derive("acme/support-intent", minilm, datasets=[reviews], licence="Apache-2.0")
    result = check(tuned)
    assert not result.passed
    [violation] = errors(result)["non-commercial-use"]
    assert violation.licence == "CC-BY-NC-4.0"
    assert violation.source.ref == "acme/reviews@v1"
    assert violation.clause == "CC BY-NC 4.0 §2(a)(1)"
    reason = result.reasons()[0]
    assert f"{tuned} —trained on (train)→ acme/reviews@v1 → CC-BY-NC-4.0" in reason
    assert "Fix: Retrain without acme/reviews@v1" in reason
    # Declared Apache-2.0 while carrying a non-commercial term: a conflict, flagged in any use.
    research = check(tuned, use="research")
    assert research.passed
    assert rules_of(research, "warning") == {"non-commercial-conflict"}


def test_llama_31_adapter_must_be_named_llama(upstream, derive):
    llama = upstream("meta-llama/Llama-3.1-8B", "LicenseRef-Llama-3.1")
    adapter = derive("acme/support-lora", llama, "adapter", licence="LicenseRef-Llama-3.1")
    result = check(adapter)
    assert not result.passed
    [violation] = errors(result)["naming-prefix"]
    assert violation.clause == "Llama 3.1 Community License §1.b.i"
    assert 'beginning with "Llama"' in violation.message
    assert '"acme/support-lora" does not' in violation.message
    assert violation.path.startswith(f"{adapter} —adapter→ meta-llama/Llama-3.1-8B@main")
    assert "Rename the model" in violation.how_to_fix

    named = derive("acme/Llama-3.1-support-lora", llama, "adapter", licence="LicenseRef-Llama-3.1")
    named_result = check(named)
    # Named right; what is left is the fact only the team knows (an attestation, see test_api).
    assert set(errors(named_result)) == {"user-threshold-attestation"}
    assert "user-threshold" in rules_of(check(named, stage="staging"), "hint")
    # The upstream itself is the Llama Materials: the naming rule binds what is built from it.
    assert "naming-prefix" not in errors(check(llama))


def test_merge_inherits_the_non_commercial_term_of_either_parent(upstream, derive):
    apache = upstream("acme-open/encoder", "Apache-2.0")
    research_only = upstream("lab/encoder-nc", "CC-BY-NC-4.0")
    merged = derive("acme/merged", [apache, research_only], "merge", licence="Apache-2.0")
    obligations = version_obligations(merged)
    non_commercial = [o for o in obligations.obligations if o.term.type == "non_commercial"]
    assert len(non_commercial) == 1
    assert non_commercial[0].source.ref == "lab/encoder-nc@main"
    assert non_commercial[0].path == (
        f"{merged} —merge→ lab/encoder-nc@main → CC-BY-NC-4.0 → CC BY-NC 4.0 §2(a)(1)"
    )
    assert {o.source.ref for o in obligations.obligations if o.licence.id == "Apache-2.0"} >= {
        "acme-open/encoder@main"
    }
    result = check(merged)
    assert not result.passed
    assert errors(result)["non-commercial-use"][0].source.ref == "lab/encoder-nc@main"


def test_waiver_turns_the_error_into_a_pass_until_it_expires(
    minilm, derive, dataset, compliance_user, approver
):
    reviews = dataset("acme/reviews", "CC-BY-NC-4.0")
    tuned = derive("acme/support-intent", minilm, datasets=[reviews])
    assert not check(tuned).passed
    expires = timezone.now() + timedelta(days=30)
    waiver = services.licence_waiver_grant(
        actor=compliance_user,
        version=tuned,
        rule_name="non-commercial-use",
        licence_id="cc-by-nc-4.0",
        reason="Licensor granted a commercial licence by letter (ticket LEG-42).",
        approver=approver,
        expires_at=expires,
    )
    assert waiver.licence_id == "CC-BY-NC-4.0"
    waived = check(tuned)
    assert waived.passed
    [violation] = [v for v in waived.violations if v.rule == "non-commercial-use"]
    assert violation.waiver.approver == "dana"
    assert waived.to_dict()["counts"]["waived"] == 1
    # The day after it expires, it waives nothing.
    assert not check(tuned, now=expires + timedelta(days=1)).passed
    LicenceWaiver.objects.filter(pk=waiver.pk).update(
        created_at=timezone.now() - timedelta(days=40),
        expires_at=timezone.now() - timedelta(days=1),
    )
    assert not check(tuned).passed


# ------------------------------------------------------------------ inheritance


def test_obligations_reach_through_several_generations_and_ancestors_training_data(
    minilm, derive, dataset
):
    reviews = dataset("acme/reviews", "CC-BY-NC-4.0")
    tuned = derive("acme/support-intent", minilm, datasets=[reviews])
    quantized = derive("acme/support-intent-int8", tuned, "quantized")
    [obligation] = [
        o for o in version_obligations(quantized).obligations if o.term.type == "non_commercial"
    ]
    assert obligation.path == (
        f"{quantized} —quantized→ {tuned} —trained on (train)→ acme/reviews@v1 → CC-BY-NC-4.0 "
        "→ CC BY-NC 4.0 §2(a)(1)"
    )
    assert [step.kind for step in obligation.steps] == [
        "version",
        "edge",
        "version",
        "edge",
        "dataset",
        "licence",
        "clause",
    ]


def test_terms_follow_only_the_relations_they_carry_through(upstream, derive, dataset):
    apache = upstream("acme-open/teacher", "Apache-2.0")
    llama = upstream("meta-llama/Llama-3.1-70B", "LicenseRef-Llama-3.1")
    code_data = dataset("acme/snippets", "MIT")
    student = derive("acme/student", [apache, llama], "distillation", datasets=[code_data])
    obligations = version_obligations(student)
    inherited = {
        (o.licence.id, o.term.type) for o in obligations.obligations if o.source.kind != "self"
    }
    # Software licences bind copies and modifications of the weights, not a student trained on
    # their outputs, nor a model trained on MIT-licensed data.
    assert not {pair for pair in inherited if pair[0] in ("Apache-2.0", "MIT")}
    # Llama 3.1's naming rule reaches models trained on Llama outputs.
    assert ("LicenseRef-Llama-3.1", "naming_prefix") in inherited
    assert ("LicenseRef-Llama-3.1", "licence_copy") not in inherited
    # Every input is still a source the policy can look at.
    assert {s.ref for s in obligations.sources} >= {str(apache), str(llama), "acme/snippets@v1"}


def test_test_data_carries_no_obligations(minilm, derive, dataset):
    benchmark = dataset("acme/benchmark", "CC-BY-NC-4.0")
    tuned = derive("acme/support-intent", minilm, datasets=[(benchmark, "test")])
    assert not [s for s in version_obligations(tuned).sources if s.kind == "dataset"]
    assert check(tuned).passed


def test_concluded_licence_wins_over_declared(minilm, derive, dataset, compliance_user):
    reviews = dataset("acme/reviews", "CC-BY-NC-4.0")
    tuned = derive("acme/support-intent", minilm, datasets=[reviews])
    assert not check(tuned).passed
    registry_services.dataset_version_update(
        actor=compliance_user, dataset_version=reviews, changes={"licence_concluded": "CC-BY-4.0"}
    )
    result = check(tuned)
    assert result.passed, result.reasons()
    source = next(s for s in version_obligations(tuned).sources if s.kind == "dataset")
    assert (source.expression, source.field) == ("CC-BY-4.0", "licence_concluded")


# ------------------------------------------------------------------ the default policy


def test_share_alike_input_under_a_non_share_alike_output(minilm, derive, dataset):
    wiki = dataset("acme/wiki", "CC-BY-SA-4.0")
    tuned = derive("acme/support-intent", minilm, datasets=[wiki], licence="Apache-2.0")
    shipped = check(tuned, distribution="shipped_weights")
    assert errors(shipped).keys() == {"share-alike-shipped"}
    assert "declared Apache-2.0, which is not share-alike" in shipped.blocking[0].message
    hosted = check(tuned, distribution="hosted")
    assert hosted.passed and "share-alike-hosted" in rules_of(hosted, "warning")
    share_alike = derive("acme/support-sa", minilm, datasets=[wiki], licence="CC-BY-SA-4.0")
    assert "share-alike-shipped" not in rules_of(check(share_alike, distribution="shipped_weights"))


def test_or_expression_picks_the_least_restrictive_branch_and_says_which(minilm, derive, dataset):
    wiki = dataset("acme/wiki", "CC-BY-SA-4.0")
    dual = derive(
        "acme/support-dual", minilm, datasets=[wiki], licence="Apache-2.0 OR CC-BY-SA-4.0"
    )
    result = check(dual, distribution="shipped_weights")
    assert result.passed, result.reasons()
    assert result.output == ("CC-BY-SA-4.0",)
    [choice] = result.to_dict()["choices"]
    assert choice["chosen"] == "CC-BY-SA-4.0"
    assert "least restrictive alternative that satisfies the policy" in choice["reason"]

    mixed = dataset("acme/mixed", "CC-BY-NC-4.0 OR CC-BY-4.0")
    tuned = derive("acme/support-intent", minilm, datasets=[mixed])
    picked = check(tuned)
    assert picked.passed, picked.reasons()
    assert [c.chosen for c in picked.choices] == [("CC-BY-4.0",)]


def test_unknown_and_unreviewed_licences_block_production_until_concluded(
    upstream, derive, conclude
):
    mystery = upstream("someone/mystery-model", "LicenseRef-Unknown")
    tuned = derive("acme/from-mystery", mystery)
    production = check(tuned)
    assert {"unknown-licence-production", "unreviewed-licence-production"} <= errors(
        production
    ).keys()
    staging = check(tuned, stage="staging")
    assert staging.passed
    assert {"unknown-licence", "unreviewed-licence"} <= rules_of(staging, "warning")
    conclude(mystery, "MIT")
    assert check(tuned).passed


def test_missing_licence_is_an_error(make_version, licence_tables):
    version = make_version(licence_declared="")
    result = check(version, stage="staging")
    [violation] = errors(result)["missing-licence"]
    assert violation.licence == "NONE"
    assert "declares no licence" in violation.message


def test_catch_all_flags_licences_no_rule_covers(minilm, derive, dataset):
    artistic = dataset("acme/perl-snippets", "Artistic-2.0")
    tuned = derive("acme/support-intent", minilm, datasets=[artistic])
    result = check(tuned)
    assert result.passed
    [violation] = [v for v in result.violations if v.rule == "catch-all"]
    assert violation.licence == "Artistic-2.0"
    assert "No licence rule covers Artistic-2.0 (weak_copyleft)" in violation.message


def test_no_derivatives_input_blocks_sharing(minilm, derive, dataset):
    nd = dataset("acme/nd-corpus", "CC-BY-ND-4.0")
    tuned = derive("acme/support-intent", minilm, datasets=[nd])
    assert "no-derivatives" in errors(check(tuned))
    assert check(tuned, use="internal").passed


# ------------------------------------------------------------------ policy edits


def test_rule_changes_bump_the_revision_which_results_record(
    minilm, derive, compliance_user, dataset
):
    tuned = derive("acme/support-intent", minilm, datasets=[dataset("acme/d", "CC-BY-4.0")])
    before = check(tuned)
    revision = before.policy["revision"]
    rule = services.licence_rule_create(
        actor=compliance_user,
        name="no-cc-by-in-production",
        condition="licence",
        licence="CC-BY-4.0",
        severity="error",
        stages=["production"],
        message="{source} is under {licence}; this team does not ship CC BY data.",
        how_to_fix="Replace {source}.",
    )
    after = check(tuned)
    assert after.policy["revision"] == revision + 1
    assert errors(after)["no-cc-by-in-production"][0].message == (
        "acme/d@v1 is under CC-BY-4.0; this team does not ship CC BY data."
    )
    services.licence_rule_update(actor=compliance_user, rule=rule, changes={"enabled": False})
    assert check(tuned).passed
    services.licence_rule_delete(actor=compliance_user, rule=rule)
    policy = rule.policy
    policy.refresh_from_db()
    assert policy.revision == revision + 3
    revisions = list(policy.revisions.order_by("revision").values_list("revision", "change"))
    assert revisions[-3:] == [
        (revision + 1, "rule no-cc-by-in-production created"),
        (revision + 2, "rule no-cc-by-in-production updated"),
        (revision + 3, "rule no-cc-by-in-production deleted"),
    ]
    snapshot = policy.revisions.get(revision=revision + 1).rules
    assert {"name": "no-cc-by-in-production", "licence": "CC-BY-4.0"}.items() <= next(
        r for r in snapshot if r["name"] == "no-cc-by-in-production"
    ).items()


@pytest.mark.parametrize(
    ("values", "field", "text"),
    [
        ({"condition": "category", "category": "open"}, "category", "Unknown category 'open'"),
        ({"condition": "licence", "licence": "LicenseRef-Acme"}, "licence", "Unknown licence"),
        ({"condition": "term_type", "term_type": "credit"}, "term_type", "Unknown term type"),
        ({"condition": "conflict", "term_type": "attribution"}, "term_type", "conflict rule"),
        ({"condition": "catch_all", "uses": ["personal"]}, "uses", "Unknown uses: personal"),
        ({"condition": "catch_all", "severity": "fatal"}, "severity", "Unknown severity"),
        ({"condition": "shrug"}, "condition", "Unknown condition 'shrug'"),
        (
            {"condition": "catch_all", "message": "{licence} from {origin}"},
            "message",
            "unknown placeholder {origin}",
        ),
        ({"condition": "catch_all", "how_to_fix": " "}, "how_to_fix", "how to fix"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(
    compliance_user, licence_tables, values, field, text
):
    rule = {
        "name": "bad-rule",
        "severity": "warning",
        "message": "A message about {licence}.",
        "how_to_fix": "Do something.",
    } | values
    with pytest.raises(InvalidInput) as excinfo:
        services.licence_rule_create(actor=compliance_user, **rule)
    assert field in excinfo.value.fields
    assert text in excinfo.value.fields[field][0]


def test_only_compliance_edits_the_policy(engineer, licence_tables):
    with pytest.raises(PermissionRefused):
        services.licence_rule_create(
            actor=engineer,
            name="x",
            condition="catch_all",
            severity="hint",
            message="m",
            how_to_fix="f",
        )


# ------------------------------------------------------------------ waivers


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"reason": "  "}, "reason", "needs a reason"),
        ({"expires_at": None}, "expires_at", "needs an expiry date"),
        ({"expires_at": "past"}, "expires_at", "in the past"),
        ({"expires_at": "far"}, "expires_at", "at most"),
        ({"rule_name": "no-such-rule"}, "rule", "no rule 'no-such-rule'"),
        ({"rule_name": "user-threshold"}, "rule", "only gives hints"),
        ({"licence_id": "LicenseRef-Nope"}, "licence", "Unknown licence"),
        ({"approver": "alice"}, "approver", "not compliance staff"),
    ],
)
def test_bad_waivers_are_refused(
    minilm, derive, compliance_user, approver, engineer, changes, field, text
):
    tuned = derive("acme/support-intent", minilm)
    now = timezone.now()
    request = {
        "rule_name": "non-commercial-use",
        "reason": "Contract LEG-42.",
        "approver": approver,
        "expires_at": now + timedelta(days=10),
    } | changes
    if request["expires_at"] == "past":
        request["expires_at"] = now - timedelta(days=1)
    elif request["expires_at"] == "far":
        request["expires_at"] = now + timedelta(days=3650)
    with pytest.raises(InvalidInput) as excinfo:
        services.licence_waiver_grant(actor=compliance_user, version=tuned, **request)
    assert text in excinfo.value.fields[field][0]
    assert not LicenceWaiver.objects.exists()


def test_waiver_approver_must_not_have_made_the_version(
    minilm, derive, make_user, team, licence_tables
):
    insider = make_user("ivan", teams=[team], compliance=True)
    tuned = derive("acme/support-intent", minilm, actor=insider)
    with pytest.raises(PermissionRefused) as excinfo:
        services.licence_waiver_grant(
            actor=insider,
            version=tuned,
            rule_name="non-commercial-use",
            reason="r",
            approver=insider,
            expires_at=timezone.now() + timedelta(days=1),
        )
    assert "separation of duties" in excinfo.value.message


def test_revoked_waiver_no_longer_waives(minilm, derive, dataset, compliance_user, approver):
    tuned = derive("acme/support-intent", minilm, datasets=[dataset("acme/r", "CC-BY-NC-4.0")])
    waiver = services.licence_waiver_grant(
        actor=compliance_user,
        version=tuned,
        rule_name="non-commercial-use",
        reason="Letter from licensor.",
        approver=approver,
        expires_at=timezone.now() + timedelta(days=5),
    )
    assert check(tuned).passed
    services.licence_waiver_revoke(actor=compliance_user, waiver=waiver)
    assert not check(tuned).passed


def test_a_licence_waiver_that_stops_counting_says_why(
    minilm, derive, dataset, compliance_user, approver
):
    tuned = derive("acme/support-intent", minilm, datasets=[dataset("acme/r", "CC-BY-NC-4.0")])
    waiver = services.licence_waiver_grant(
        actor=compliance_user,
        version=tuned,
        rule_name="non-commercial-use",
        reason="Letter from licensor.",
        approver=approver,
        expires_at=timezone.now() + timedelta(days=5),
    )
    assert check(tuned).passed
    approver.groups.clear()
    evaluation = gate_evaluate(version=tuned, stage="staging")
    [row] = [r for r in evaluation.results if r["check"] == "licence"]
    assert not row["passed"]
    assert row["reasons"][0].startswith("[non-commercial-use] CC-BY-NC-4.0 via ")
    assert row["reasons"][1] == (
        f"licence waiver #{waiver.pk} no longer counts: dana is no longer compliance staff; "
        "ask compliance staff to waive it again"
    )
    # Back in compliance, it counts again; the granter joining the owning team voids it.
    approver.groups.add(Group.objects.get(name=COMPLIANCE_GROUP))
    assert check(tuned).passed
    tuned.model.team.members.add(compliance_user)
    lapsed = check(tuned)
    assert not lapsed.passed
    assert "carol has since joined the owning team" in lapsed.reasons()[1]


# ------------------------------------------------------------------ the gate


def test_licence_is_a_gate_check_with_reasons_and_policy_revision(
    minilm, derive, dataset, engineer
):
    tuned = derive("acme/support-intent", minilm, datasets=[dataset("acme/r", "CC-BY-NC-4.0")])
    evaluation = gate_evaluate(version=tuned, stage="staging", use="commercial", actor=engineer)
    [row] = [r for r in evaluation.results if r["check"] == "licence"]
    assert row["required"] and not row["passed"]
    assert row["reasons"][0].startswith("[non-commercial-use] CC-BY-NC-4.0 via ")
    assert row["evidence"]["policy"]["revision"] >= 1
    assert row["evidence"]["violations"][0]["clause"] == "CC BY-NC 4.0 §2(a)(1)"
    research = gate_evaluate(version=tuned, stage="staging", use="research", actor=engineer)
    assert next(r for r in research.results if r["check"] == "licence")["passed"]


def test_gate_evidence_lists_what_blocks_and_counts_hints(minilm, derive, dataset, engineer):
    """A gate decision keeps every error and warning by its path, and only counts the notice
    hints a deep lineage of permissive ancestors collects (one per ancestor)."""
    tuned = derive("acme/intent", minilm, datasets=[dataset("acme/r", "CC-BY-NC-4.0")])
    for level in range(6):
        tuned = derive(f"acme/intent-{level}", tuned, "finetune")
    evaluation = gate_evaluate(version=tuned, stage="staging", use="commercial", actor=engineer)
    [row] = [r for r in evaluation.results if r["check"] == "licence"]
    evidence = row["evidence"]
    full = check(tuned, stage="staging")
    assert evidence["counts"] == full.counts() and evidence["counts"]["hint"] >= 7
    kept = [v for v in full.violations if v.severity != "hint" or v.waiver]
    assert [v["rule"] for v in evidence["violations"]] == [v.rule for v in kept]
    assert "non-commercial-use" in {v["rule"] for v in evidence["violations"]}
    assert all("steps" not in v and v["path"] for v in evidence["violations"])
    assert evidence["report"] == (
        f"/api/v1/versions/{tuned.pk}/licence-check/"
        "?stage=staging&use=commercial&distribution=hosted"
    )


def test_gate_endpoint_queries_do_not_grow_with_depth_or_differ_by_role(
    api_for, engineer, compliance_user, minilm, derive, dataset
):
    shallow = derive("acme/shallow", minilm, datasets=[dataset("acme/d", "CC-BY-4.0")])
    deep = shallow
    for level in range(12):
        deep = derive(f"acme/deep-{level}", deep, "quantized" if level % 2 else "finetune")
    merged = derive("acme/merged", [deep, shallow], "merge")
    counts = {}
    for user in (engineer, compliance_user):
        api = api_for(user)
        for version in (minilm, shallow, deep, merged):
            path = f"/api/v1/versions/{version.pk}/gate/?stage=production&use=commercial"
            with CaptureQueriesContext(connection) as queries:
                assert api.get(path).status_code == 200
            counts[(user.username, str(version))] = len(queries)
            # The checks and the redaction share one walk of the lineage (registry.memo).
            walks = [q for q in queries.captured_queries if "WITH RECURSIVE" in q["sql"]]
            assert len(walks) == 1, walks
    by_role = {
        username: {n for (who, _), n in counts.items() if who == username}
        for username in (engineer.username, compliance_user.username)
    }
    # The same for every depth; an engineer's answer costs the redaction's one fixed query more
    # (what of the family they cannot see: lineage.redaction; the family itself is the walk the
    # checks already made), compliance reads it whole.
    assert all(len(seen) == 1 for seen in by_role.values()), counts
    (engineer_count,), (compliance_count,) = by_role.values()
    assert engineer_count == compliance_count + 1, counts


def test_gate_check_fails_closed_without_an_active_policy(minilm, licence_tables):
    from licensing.models import LicencePolicy

    LicencePolicy.objects.update(active=False)
    result = check(minilm)
    assert not result.passed
    assert "no licence policy is active" in result.reasons()[0]
