from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Catalogue"

    def ready(self) -> None:
        from django.urls import register_converter

        from registry import checks
        from registry.api.base import VersionRefConverter
        from registry.plugins import GateCheck, plugins

        plugins.register(
            GateCheck("metadata", checks.metadata_complete),
            GateCheck("approvals", checks.approvals_given),
        )
        # Every app's version routes name the version as `<version:pk>`: an id or MODEL@VERSION.
        register_converter(VersionRefConverter, "version")


class PedigreeAdminConfig(AdminConfig):
    """The admin, with the compliance dashboard as its index page."""

    default_site = "registry.admin_site.PedigreeAdminSite"
