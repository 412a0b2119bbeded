from django.apps import AppConfig


class EvaluatorsConfig(AppConfig):
    name = "evaluators"
    verbose_name = "Evaluations"

    def ready(self) -> None:
        from evaluators import admin, checks, console
        from evaluators.selectors import exported_results
        from registry.plugins import (
            DashboardPanel,
            EvaluationResultsProvider,
            EvidenceProvider,
            GateCheck,
            VersionPanel,
            plugins,
        )

        plugins.register(
            GateCheck("quality", checks.quality_met),
            GateCheck("fairness", checks.fairness_within_limits),
            GateCheck("no_negative_transfer", checks.no_negative_transfer),
            EvaluationResultsProvider(exported_results),
            EvidenceProvider("evaluation_runs", checks.evaluation_evidence_snapshot),
            DashboardPanel(
                "Evaluations", "evaluators/dashboard_panel.html", admin.dashboard_panel_context
            ),
            VersionPanel("evaluators/version_panel.html", admin.version_panel_context),
            *console.CONTRIBUTIONS,
        )
