from django.urls import path
from rest_framework.routers import SimpleRouter

from lineage.api import views

router = SimpleRouter()
router.register("holds", views.HoldViewSet, basename="hold")

urlpatterns = [
    path("registrations/", views.RegistrationView.as_view(), name="registration-create"),
    path("versions/<int:pk>/lineage/", views.VersionLineageView.as_view(), name="version-lineage"),
    path("versions/<int:pk>/ancestors/", views.AncestorsView.as_view(), name="version-ancestors"),
    path(
        "versions/<int:pk>/descendants/",
        views.DescendantsView.as_view(),
        name="version-descendants",
    ),
    path("versions/<int:pk>/roots/", views.RootsView.as_view(), name="version-roots"),
    path("versions/<int:pk>/path/", views.PathView.as_view(), name="version-path"),
    path("versions/<int:pk>/parents/", views.ParentsView.as_view(), name="version-parents"),
    path(
        "versions/<int:pk>/training-run/",
        views.TrainingRunView.as_view(),
        name="version-training-run",
    ),
    path("versions/<int:pk>/holds/", views.VersionHoldsView.as_view(), name="version-holds"),
    path(
        "dataset-versions/<int:pk>/trained-models/",
        views.TrainedModelsView.as_view(),
        name="dataset-version-trained-models",
    ),
    *router.urls,
]
