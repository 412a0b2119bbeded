from django.apps import AppConfig


class LicensingConfig(AppConfig):
    name = "licensing"
    verbose_name = "Licensing"

    def ready(self) -> None:
        from licensing import admin, checks, console
        from licensing.catalogue import resolve_hub_licence
        from licensing.validation import normalise_licence_field
        from registry.plugins import (
            GateCheck,
            HubLicenceResolution,
            LicenceValidator,
            VersionPanel,
            plugins,
        )

        plugins.register(
            GateCheck(checks.CHECK_NAME, checks.licence_gate),
            LicenceValidator(normalise_licence_field),
            HubLicenceResolution(resolve_hub_licence),
            VersionPanel("licensing/version_panel.html", admin.version_panel_context),
            *console.CONTRIBUTIONS,
        )
