from django.apps import AppConfig


class LicensingConfig(AppConfig):
    name = "licensing"
    verbose_name = "Licensing"

    def ready(self) -> None:
        from licensing.catalogue import resolve_hub_licence
        from registry import hub

        hub.LICENCE_RESOLVER = resolve_hub_licence
