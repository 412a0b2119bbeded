from django.apps import apps
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("registry.api.urls")),
    # The core works with any subset of the other apps installed.
    *(
        path("api/v1/", include(f"{app}.api.urls"))
        for app in ("lineage", "evaluators", "licensing")
        if apps.is_installed(app)
    ),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI's start-up script is served from its own URL, as the CSP allows no inline one.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="schema", template_name="registry/swagger_ui.html"
        ),
        name="api-docs",
    ),
]
