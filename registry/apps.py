from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Catalogue"

    def ready(self) -> None:
        from registry import checks  # noqa: F401  (registers the catalogue's gate checks)


class PedigreeAdminConfig(AdminConfig):
    """The admin, with the compliance dashboard as its index page."""

    default_site = "registry.admin_site.PedigreeAdminSite"
