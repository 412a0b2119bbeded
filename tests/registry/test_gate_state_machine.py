"""A state machine drives registrations, edits, evidence-change proposals and their
conclusions, approvals, waivers, holds, evaluations, suites, policy changes, time passing and
promotions in random order; after every step nothing is in staging or production unless its
current evidence passes its gate, or it is flagged out of compliance with reasons.

So that the invariant is exercised on staged versions at all, `release` prepares a sound
version completely (holds lifted, metadata, concluded licence, a passing evaluation on every
suite, approvals from both independent officers) and promotes it to staging and on to
production; the later rules weaken the evidence again (an accepted proposal, a hold on an
ancestor, a policy revision, a training dataset relabelled, time passing). `OUTCOMES` counts
across the whole run what happened, and the test fails if promotions or flagged staged
versions never occurred.

Evaluations are real: every version is registered from one of two tabular-linear models (a
sound one, right on all 20 rows, and a weak one at accuracy 0.7 with a 0.6 gap between age
bands) and evaluated in-process by the tabular evaluator, the fastest real path there is."""

import itertools
from collections import Counter
from datetime import timedelta

import pandas as pd
import pytest
import torch
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from evaluators.engine.plugins import save_tabular_linear
from evaluators.models import EvaluationRun
from evaluators.services import run_request, suite_create
from lineage import services as lineage_services
from lineage.models import Hold, LineageEdge
from lineage.services import DatasetUse, ParentSpec
from pedigree_client.artefacts import sha256_file
from registry import gates, services
from registry.errors import ServiceError
from registry.models import (
    Approval,
    CheckWaiver,
    ComplianceStatus,
    EvidenceProposal,
    ModelVersion,
    StagePolicy,
)
from tests.evaluators.test_tabular import ROWS

pytestmark = pytest.mark.django_db

TIERS = ("minimal", "limited", "high")
LICENCES = ("Apache-2.0", "MIT", "CC-BY-NC-4.0")
# What happened across every example of the run (promotions, flagged staged versions,
# proposals concluded): the test asserts the invariant was really put to the test.
OUTCOMES: Counter[str] = Counter()
_labels = itertools.count(1)


class GateMachine(RuleBasedStateMachine):
    """One example's world lives in a savepoint rolled back at teardown."""

    world: dict = {}

    @initialize()
    def setup(self):
        self.savepoint = transaction.savepoint()
        world = self.world
        self.engineer, self.officers = world["engineer"], world["officers"]
        self.capture = world["capture"]
        self.model = services.model_create(
            actor=self.engineer,
            name=f"acme/machine-{next(_labels)}",
            kind="derived",
            team=world["team"],
            allow_multiple_production=True,
        )
        self.versions: list[int] = []
        self.sound: set[int] = set()
        self.suites = [self._suite()]
        # Every example starts with one sound, evaluated, permissively licensed version, so
        # that releases have a candidate from the first step.
        self.register("limited", "Apache-2.0", None, "sound", True, False)

    def _suite(self):
        return suite_create(
            actor=self.engineer,
            name=f"machine-credit-{next(_labels)}",
            team=self.world["team"],
            dataset_version=self.world["credit"],
            task="tabular-classification",
            feature_columns=["income", "tenure"],
            label_column="label",
            sensitive_columns=["age_band"],
            min_group_size=5,
            positive_label="approve",
            min_quality={"accuracy": 0.8},
            max_fairness_gaps={"accuracy_gap": 0.1},
            models=[self.model],
        )

    def teardown(self):
        transaction.savepoint_rollback(self.savepoint)

    def _do(self, call, *args, **kwargs):
        """Run a service as a request would: refusals are fine, after-commit work runs."""
        with self.capture(execute=True):
            try:
                with transaction.atomic():
                    return call(*args, **kwargs)
            except ServiceError:
                return None

    def _reload(self, pk):
        return ModelVersion.objects.select_related("model__team").get(pk=pk)

    def _version(self, index):
        return ModelVersion.objects.select_related("model__team").get(
            pk=self.versions[index % len(self.versions)]
        )

    @rule(
        tier=st.sampled_from(TIERS),
        # Mostly licences a commercial release may use, so that releases can succeed.
        licence=st.sampled_from(("Apache-2.0", "MIT", "Apache-2.0", "CC-BY-NC-4.0")),
        parent=st.none() | st.integers(0, 9),
        weights=st.sampled_from(["sound", "sound", "weak"]),
        evaluated=st.booleans(),
        trained=st.booleans(),
    )
    def register(self, tier, licence, parent, weights, evaluated, trained):
        training = {
            "method": "full_finetune",
            "hyperparameters": {"learning_rate": 0.001, "epochs": 1},
            "datasets": [DatasetUse(self.world["corpus"], "train")],
        }
        version = self._do(
            lineage_services.registration_create,
            actor=self.engineer,
            model=self.model.name,
            version=f"v{next(_labels)}",
            parents=(
                [ParentSpec(self._version(parent), "finetune")]
                if self.versions and parent is not None
                else []
            ),
            training_run=training if trained else None,
            artefact_path=str(self.world["weights"][weights]),
            risk_tier=tier,
            licence_declared=licence,
            intended_use="Routing support tickets",
            known_limitations="English only",
        )
        if version is not None:
            self.versions.append(version.pk)
            if weights == "sound":
                self.sound.add(version.pk)
            if evaluated:
                self._evaluate(version, self.suites[0])

    def _evaluate(self, version, suite):
        """A real evaluation, run inline after the commit; its result triggers the recheck."""
        requested = self._do(run_request, actor=self.engineer, version=version, suite=suite)
        if requested is not None:
            run = EvaluationRun.objects.get(pk=requested[0].pk)
            assert run.status == "succeeded", run.error

    @precondition(lambda self: self.versions)
    @rule(index=st.integers(0, 9), suite=st.integers(0, 2))
    def evaluate(self, index, suite):
        self._evaluate(self._version(index), self.suites[suite % len(self.suites)])

    @precondition(lambda self: len(self.suites) < 3)
    @rule()
    def attach_suite(self):
        """A new suite on the model: nobody has been evaluated on it yet."""
        suite = self._do(self._suite)
        if suite is not None:
            self.suites.append(suite)

    @precondition(lambda self: self.versions)
    @rule(index=st.integers(0, 9))
    def conclude(self, index):
        version = self._version(index)
        self._do(
            services.version_update,
            actor=self.officers[0],
            version=version,
            changes={"licence_concluded": version.licence_declared},
        )

    @precondition(lambda self: self.versions)
    @rule(
        index=st.integers(0, 9),
        who=st.integers(0, 1),
        stage=st.sampled_from(["staging", "production"]),
    )
    def approve(self, index, who, stage):
        self._do(
            services.approval_record,
            actor=self.officers[who],
            version=self._version(index),
            stage=stage,
        )

    @precondition(lambda self: self.versions)
    @rule(index=st.integers(0, 9), check=st.sampled_from(["metadata", "lineage_health", "licence"]))
    def waive(self, index, check):
        self._do(
            services.check_waiver_grant,
            actor=self.officers[1],
            version=self._version(index),
            check_name=check,
            reason="accepted for the machine",
            expires_at=timezone.now() + timedelta(days=5),
        )

    @precondition(lambda self: self.versions)
    @rule(index=st.integers(0, 9))
    def hold(self, index):
        self._do(
            lineage_services.hold_place,
            actor=self.officers[0],
            version=self._version(index),
            reason="found a problem",
        )

    @rule()
    def lift(self):
        held = Hold.objects.filter(lifted_at__isnull=True, version__model=self.model).first()
        if held is not None:
            self._do(lineage_services.hold_lift, actor=self.officers[0], hold=held, reason="fixed")

    @rule(
        tier=st.sampled_from(TIERS),
        stage=st.sampled_from(["staging", "production"]),
        approvals=st.integers(0, 2),
        hold=st.booleans(),
        fairness=st.booleans(),
    )
    def change_policy(self, tier, stage, approvals, hold, fairness):
        policy = StagePolicy.objects.get(stage=stage, risk_tier=tier)
        checks = [check for check in policy.required_checks if check != "fairness"]
        self._do(
            services.stage_policy_update,
            actor=self.officers[0],
            policy=policy,
            changes={
                "approvals_required": approvals,
                "hold_when_out_of_compliance": hold,
                "required_checks": [*checks, *(["fairness"] if fairness else [])],
            },
        )

    @precondition(lambda self: self.versions)
    @rule()
    def time_passes(self):
        """Approvals and waivers expire and evaluations go stale; only the scheduled recheck
        can notice."""
        ids = self.versions
        past = timezone.now() - timedelta(seconds=1)
        long_ago = timezone.now() - timedelta(days=400)
        for model in (Approval, CheckWaiver):
            model.objects.filter(version_id__in=ids).update(created_at=long_ago, expires_at=past)
        EvaluationRun.objects.filter(version_id__in=ids, finished_at__isnull=False).update(
            requested_at=long_ago, started_at=long_ago, finished_at=long_ago
        )
        self._do(services.compliance_recheck, version_ids=ids)

    @precondition(lambda self: self.versions)
    @rule(index=st.integers(0, 9), stage=st.sampled_from(["staging", "production"]))
    def promote(self, index, stage):
        self._promote(self._version(index), stage)

    def _promote(self, version, stage):
        decision = self._do(
            services.version_promote, actor=self.engineer, version=version, stage=stage
        )
        promoted = decision is not None and decision.passed and decision.from_stage != stage
        if promoted:
            OUTCOMES[f"promoted to {stage}"] += 1
            event(f"promoted to {stage}")
        return promoted

    def _releasable(self):
        return ModelVersion.objects.filter(
            pk__in=self.sound, stage__in=["development", "staging"]
        ).exists()

    @precondition(_releasable)
    @rule(index=st.integers(0, 9))
    def release_to_staging(self, index):
        self._release(index, production=False)

    @precondition(_releasable)
    @rule(index=st.integers(0, 9))
    def release_to_production(self, index):
        self._release(index, production=True)

    def _release(self, index, *, production):
        """Prepare a sound version for promotion as a careful team and independent compliance
        would, then promote it to staging and, if asked, on to production."""
        candidates = list(
            ModelVersion.objects.filter(
                pk__in=self.sound, stage__in=["development", "staging"]
            ).order_by("pk")
        )
        version = candidates[index % len(candidates)]
        officer = self.officers[0]
        for held in Hold.objects.filter(lifted_at__isnull=True, version__model=self.model):
            self._do(lineage_services.hold_lift, actor=officer, hold=held, reason="resolved")
        version = self._reload(version.pk)
        self._do(
            services.version_update,
            actor=officer,
            version=version,
            changes={
                "intended_use": version.intended_use or "Routing support tickets",
                "known_limitations": version.known_limitations or "English only",
                "licence_concluded": version.licence_declared,
            },
        )
        version = self._reload(version.pk)
        for suite in self.suites:
            self._evaluate(version, suite)
        stages = ["staging", "production"] if production else ["staging"]
        for stage in stages:
            for reviewer in self.officers:
                self._do(services.approval_record, actor=reviewer, version=version, stage=stage)
        for stage in stages:
            version = self._reload(version.pk)
            if version.stage != stage and not self._promote(version, stage):
                OUTCOMES[f"release to {stage} refused"] += 1
                break

    @precondition(lambda self: self.versions)
    @rule(
        index=st.integers(0, 9),
        officer=st.booleans(),
        field=st.sampled_from(["risk_tier", "licence_declared", "known_limitations"]),
        value=st.integers(0, 2),
        conclusion=st.sampled_from([None, "accept", "reject"]),
    )
    def edit(self, index, officer, field, value, conclusion):
        """An edit of evidence through the API's path: compliance staff make it; the engineer's
        is made too unless it could weaken protected evidence, which makes it a proposal that
        independent compliance may conclude at once (or later, `conclude_proposal`)."""
        new = {
            "risk_tier": TIERS[value],
            "licence_declared": LICENCES[value],
            "known_limitations": ["", "English only", "English only. Not for triage."][value],
        }[field]
        # Mostly evidence that is protected (staged or approved), where proposals arise.
        protected = list(
            ModelVersion.objects.filter(pk__in=self.versions)
            .filter(Q(stage__in=["staging", "production"]) | Q(approvals__decision="approve"))
            .distinct()
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        version = (
            self._reload(protected[index % len(protected)]) if protected else self._version(index)
        )
        result = self._do(
            services.version_edit,
            actor=self.officers[0] if officer else self.engineer,
            version=version,
            changes={field: new},
            reason="the team reassessed it",
        )
        if isinstance(result, EvidenceProposal):
            OUTCOMES["proposed"] += 1
            event("proposed")
            if conclusion is not None:
                self._conclude(result, conclusion == "accept", self.officers[1])

    @rule(licence=st.sampled_from(("CC-BY-4.0", "CC-BY-NC-4.0", "MIT")))
    def relabel_training_data(self, licence):
        """The engineer relabels the training data many versions use: proposed once protected."""
        corpus = self.world["corpus"]
        corpus.refresh_from_db()
        self._do(
            services.dataset_version_edit,
            actor=self.engineer,
            dataset_version=corpus,
            changes={"licence_declared": licence},
            reason="upstream relicensed",
        )

    @precondition(
        lambda self: EvidenceProposal.objects.filter(
            status="pending", proposed_by=self.engineer
        ).exists()
    )
    @rule(accept=st.booleans(), who=st.integers(0, 1))
    def conclude_proposal(self, accept, who):
        """Independent compliance concludes the oldest pending proposal; accepting makes the
        change, which voids the approvals it touches."""
        proposal = (
            EvidenceProposal.objects.filter(status="pending").order_by("proposed_at", "pk").first()
        )
        self._conclude(proposal, accept, self.officers[who])

    def _conclude(self, proposal, accept, officer):
        if accept:
            done = self._do(services.evidence_proposal_accept, actor=officer, proposal=proposal)
        else:
            done = self._do(
                services.evidence_proposal_reject,
                actor=officer,
                proposal=proposal,
                comment="not convinced",
            )
        if done is not None:
            OUTCOMES[f"proposal {done.status}"] += 1
            event(f"proposal {done.status}")
        else:
            # Stale (the evidence changed since): it can only be rejected.
            self._do(
                services.evidence_proposal_reject, actor=officer, proposal=proposal, comment="stale"
            )

    @precondition(
        lambda self: LineageEdge.objects.filter(
            child_id__in=self.versions, child__stage__in=["staging", "production"]
        ).exists()
    )
    @rule(index=st.integers(0, 9))
    def hold_ancestor(self, index):
        """A problem found upstream of a staged version."""
        edges = list(
            LineageEdge.objects.filter(
                child_id__in=self.versions, child__stage__in=["staging", "production"]
            ).order_by("pk")
        )
        parent = edges[index % len(edges)].parent
        self._do(
            lineage_services.hold_place,
            actor=self.officers[0],
            version=parent,
            reason="the base was found unsafe",
        )

    @invariant()
    def staged_versions_pass_or_are_flagged(self):
        staged = ModelVersion.objects.filter(
            pk__in=getattr(self, "versions", []), stage__in=["staging", "production"]
        ).select_related("model__team")
        for version in staged:
            if gates.gate_evaluate(version=version, stage=version.stage).passed:
                continue
            status = ComplianceStatus.objects.filter(version=version).first()
            assert status is not None and status.state == "out_of_compliance", (
                f"{version} is in {version.stage}, fails its gate and is not flagged"
            )
            assert status.failing and all(row["reasons"] for row in status.failing)
            OUTCOMES[f"flagged in {version.stage}"] += 1


@pytest.fixture
def credit(settings, tmp_path, engineer, team):
    """The two tabular models and the credit dataset in team acme's area of the store."""
    store = tmp_path / "store"
    settings.ARTEFACT_ROOTS = [store]
    settings.ARTEFACT_STORE = store
    area = store / "teams" / "acme"
    area.mkdir(parents=True)
    weights = {
        name: save_tabular_linear(
            area / name,
            weight=torch.tensor([[0.0, 0.0], [1.0, 0.0]]),
            bias=torch.tensor([0.0, 0.0]),
            features=["income", "tenure"],
            labels=["deny", "approve"],
            mean=[threshold, 0.0],
            scale=[10.0, 1.0],
        )
        for name, threshold in (("sound", 40.0), ("weak", 50.0))
    }
    path = area / "credit.parquet"
    pd.DataFrame(ROWS).to_parquet(path, index=False)
    dataset = services.dataset_create(actor=engineer, name="acme/credit", team=team)
    version = services.dataset_version_create(
        actor=engineer,
        dataset=dataset,
        version="v1",
        sha256=sha256_file(path),
        size_bytes=path.stat().st_size,
        uri=path.as_uri(),
    )
    return weights, version


def test_nothing_is_staged_without_passing_or_being_flagged(
    engineer, make_user, team, credit, django_capture_on_commit_callbacks
):
    for tier in TIERS:
        StagePolicy.objects.update_or_create(
            stage="staging",
            risk_tier=tier,
            defaults={"required_checks": ["metadata", "lineage_health", "licence", "quality"]},
        )
        StagePolicy.objects.update_or_create(
            stage="production",
            risk_tier=tier,
            defaults={
                "required_checks": [
                    "metadata",
                    "approvals",
                    "lineage_health",
                    "licence",
                    "quality",
                    *(["fairness"] if tier == "high" else []),
                ],
                "approvals_required": 1,
            },
        )
    officers = [make_user("carol", compliance=True), make_user("dan", compliance=True)]
    weights, dataset_version = credit
    corpus = services.dataset_version_create(
        actor=engineer,
        dataset=services.dataset_create(actor=engineer, name="acme/tickets", team=team),
        version="v1",
        sha256="c" * 64,
        size_bytes=1024,
        licence_declared="CC-BY-4.0",
    )
    GateMachine.world = {
        "engineer": engineer,
        "officers": officers,
        "team": team,
        "weights": weights,
        "credit": dataset_version,
        "corpus": corpus,
        "capture": django_capture_on_commit_callbacks,
    }
    OUTCOMES.clear()
    run_state_machine_as_test(
        GateMachine,
        settings=settings(
            max_examples=12,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            # The same draws every run (the outcomes still vary a little with the database's
            # ids): the counts asserted below are a fraction of what it does, and a change
            # that stops the machine promoting fails here, not once in a while.
            derandomize=True,
        ),
    )
    # The invariant must have met staged versions, not only empty stages: promotions to both
    # stages succeeded, and staged versions whose evidence was weakened were found flagged.
    assert OUTCOMES["promoted to staging"] >= 2, OUTCOMES
    assert OUTCOMES["promoted to production"] >= 1, OUTCOMES
    assert OUTCOMES["flagged in staging"] + OUTCOMES["flagged in production"] >= 1, OUTCOMES
