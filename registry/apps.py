from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Catalogue"

    def ready(self) -> None:
        from registry import checks
        from registry.plugins import GateCheck, plugins

        plugins.register(
            GateCheck("metadata", checks.metadata_complete),
            GateCheck("approvals", checks.approvals_given),
        )


class PedigreeAdminConfig(AdminConfig):
    """The admin, with the compliance dashboard as its index page."""

    default_site = "registry.admin_site.PedigreeAdminSite"
