from django.urls import path
from rest_framework.routers import SimpleRouter

from lineage.api import views

router = SimpleRouter()
router.register("holds", views.HoldViewSet, basename="hold")

urlpatterns = [
    path("registrations/", views.RegistrationView.as_view(), name="registration-create"),
    path(
        "versions/<version:pk>/lineage/", views.VersionLineageView.as_view(), name="version-lineage"
    ),
    path(
        "versions/<version:pk>/ancestors/", views.AncestorsView.as_view(), name="version-ancestors"
    ),
    path(
        "versions/<version:pk>/descendants/",
        views.DescendantsView.as_view(),
        name="version-descendants",
    ),
    path("versions/<version:pk>/roots/", views.RootsView.as_view(), name="version-roots"),
    path("versions/<version:pk>/path/", views.PathView.as_view(), name="version-path"),
    path("versions/<version:pk>/parents/", views.ParentsView.as_view(), name="version-parents"),
    path(
        "versions/<version:pk>/parents/<int:edge_id>/",
        views.ParentEdgeView.as_view(),
        name="version-parent-edge",
    ),
    path(
        "versions/<version:pk>/training-run/",
        views.TrainingRunView.as_view(),
        name="version-training-run",
    ),
    path(
        "versions/<version:pk>/training-data/",
        views.TrainingDataView.as_view(),
        name="version-training-data",
    ),
    path("versions/<version:pk>/holds/", views.VersionHoldsView.as_view(), name="version-holds"),
    path(
        "dataset-versions/<int:pk>/trained-models/",
        views.TrainedModelsView.as_view(),
        name="dataset-version-trained-models",
    ),
    *router.urls,
]
