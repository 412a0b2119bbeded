from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The `make demo` story: may import every app; nothing imports it."""

    name = "demo"
    verbose_name = "Demo"
