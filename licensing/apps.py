from django.apps import AppConfig


class LicensingConfig(AppConfig):
    name = "licensing"
    verbose_name = "Licensing"

    def ready(self) -> None:
        from licensing import checks  # noqa: F401  (registers the `licence` gate check)
        from licensing.catalogue import resolve_hub_licence
        from licensing.validation import normalise_licence_field
        from registry import hub, services

        if normalise_licence_field not in services.LICENCE_EXPRESSION_VALIDATORS:
            services.LICENCE_EXPRESSION_VALIDATORS.append(normalise_licence_field)
        hub.LICENCE_RESOLVER = resolve_hub_licence
