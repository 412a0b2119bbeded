from django.urls import path
from rest_framework.routers import SimpleRouter

from licensing.api import views

router = SimpleRouter()
router.register("licences", views.LicenceViewSet, basename="licence")
router.register("hub-licences", views.HubLicenceViewSet, basename="hub-licence")
router.register("licence-waivers", views.LicenceWaiverViewSet, basename="licence-waiver")

urlpatterns = [
    path("licence-policy/", views.LicencePolicyView.as_view(), name="licence-policy"),
    path(
        "versions/<version:pk>/licence-check/",
        views.VersionLicenceCheckView.as_view(),
        name="version-licence-check",
    ),
    path(
        "versions/<version:pk>/obligations/",
        views.VersionObligationsView.as_view(),
        name="version-obligations",
    ),
    *[
        path(
            f"versions/<version:pk>/export/{name}/",
            views.export_view(name).as_view(),
            name=f"version-export-{name}",
        )
        for name in ("spdx-2.3", "spdx-3.0", "model-card")
    ],
    *router.urls,
]
