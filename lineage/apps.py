from django.apps import AppConfig


class LineageConfig(AppConfig):
    name = "lineage"
    verbose_name = "Lineage"

    def ready(self) -> None:
        from lineage import admin, checks, console
        from lineage.filters import VERSION_FILTERS
        from lineage.redaction import hidden_relatives_redacted
        from lineage.services import lineage_write_lock
        from lineage.services.holds import compliance_hold_place
        from lineage.services.proposals import EVIDENCE_CHANGES
        from lineage.services.upstream import (
            upstream_parents_record,
            upstream_reference_resolved,
            upstream_training_data_record,
        )
        from registry.plugins import (
            AnswerRedaction,
            ComplianceHold,
            EvidenceProvider,
            EvidenceUsers,
            GateCheck,
            InvolvementProvider,
            UpstreamLineage,
            VersionPanel,
            plugins,
        )

        plugins.register(
            GateCheck(checks.CHECK_NAME, checks.lineage_health),
            EvidenceProvider("lineage", checks.lineage_evidence),
            EvidenceUsers(checks.evidence_users),
            ComplianceHold(compliance_hold_place),
            AnswerRedaction(hidden_relatives_redacted),
            InvolvementProvider(checks.training_run_people),
            VersionPanel("lineage/version_panel.html", admin.version_panel_context),
            *VERSION_FILTERS,
            *console.CONTRIBUTIONS,
            *EVIDENCE_CHANGES,
            UpstreamLineage(
                lock=lineage_write_lock,
                record=upstream_parents_record,
                resolved=upstream_reference_resolved,
                training_data=upstream_training_data_record,
            ),
        )
