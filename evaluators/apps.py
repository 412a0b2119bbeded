from django.apps import AppConfig


class EvaluatorsConfig(AppConfig):
    name = "evaluators"
    verbose_name = "Evaluations"

    def ready(self) -> None:
        from evaluators import checks  # noqa: F401  (registers quality, fairness, no_negative_transfer)
        from evaluators.admin import dashboard_panel
        from evaluators.selectors import exported_results
        from registry.dashboard import register_panel
        from registry.gates import register_results_provider

        register_panel(dashboard_panel)
        register_results_provider(exported_results)
