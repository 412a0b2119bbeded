from django.apps import AppConfig


class LineageConfig(AppConfig):
    name = "lineage"
    verbose_name = "Lineage"

    def ready(self) -> None:
        from lineage import checks  # noqa: F401  (registers lineage_health and involvement)
        from lineage.filters import register_version_filters

        register_version_filters()
