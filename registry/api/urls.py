from django.urls import path
from rest_framework.routers import DefaultRouter

from registry.api import artefacts, proposals, views

router = DefaultRouter()
router.register("teams", views.TeamViewSet, basename="team")
router.register("models", views.ModelViewSet, basename="model")
router.register("versions", views.VersionViewSet, basename="version")
router.register("datasets", views.DatasetViewSet, basename="dataset")
router.register("stage-policies", views.StagePolicyViewSet, basename="stage-policy")
router.register("dataset-versions", views.DatasetVersionViewSet, basename="dataset-version")
router.register("proposals", proposals.ProposalViewSet, basename="proposal")
router.register("artefacts/uploads", artefacts.ArtefactUploadViewSet, basename="artefact-upload")
router.register(
    "artefacts/inspections", artefacts.ArtefactInspectionViewSet, basename="artefact-inspection"
)

urlpatterns = [
    path("me/", views.me, name="me"),
    path("artefacts/inspect/", artefacts.ArtefactInspectView.as_view(), name="artefact-inspect"),
    path("imports/hf/", artefacts.HubImportView.as_view(), name="hub-import"),
    *router.urls,
]
