from django.urls import path
from rest_framework.routers import DefaultRouter

from evaluators.api import views

router = DefaultRouter()
router.register("evaluation-suites", views.EvaluationSuiteViewSet, basename="evaluation-suite")
router.register("evaluation-runs", views.EvaluationRunViewSet, basename="evaluation-run")

urlpatterns = [
    path(
        "versions/<version:pk>/evaluations/",
        views.VersionEvaluationsView.as_view(),
        name="version-evaluations",
    ),
    *router.urls,
]
