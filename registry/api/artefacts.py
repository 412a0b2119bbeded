"""Artefact endpoints: streamed uploads, inspection of a path inside the roots, Hub import."""

from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import TooManyFieldsSent, TooManyFilesSent
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, viewsets
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from pedigree_client.artefacts import weight_parameters
from registry import services
from registry.api.authentication import TokenAuthentication
from registry.api.base import StrictFieldsMixin, acting_user, parsed_query
from registry.api.parsers import BoundedJSONParser
from registry.api.serializers import VersionSerializer, VisibleSlugField
from registry.errors import InvalidInput, TooLarge
from registry.models import (
    SHA256_PATTERN,
    ArtefactInspection,
    ArtefactUpload,
    InspectionStatus,
    ModelVersion,
)
from registry.selectors import (
    hub_bases_of,
    hub_datasets_of,
    hub_training_data_of,
    inspections_of,
    teams_visible_to,
    uploads_of,
)

UPLOAD_CHUNK_SIZE = 1024 * 1024


def upload_too_large() -> TooLarge:
    limit = settings.PEDIGREE_MAX_UPLOAD_BYTES
    return TooLarge.for_field(
        "artefact_upload",
        f"The upload is larger than {limit} bytes (PEDIGREE_MAX_UPLOAD_BYTES); register large "
        "weights by path inside your team's area, or ask the operators to raise the limit.",
    )


class StoredFile(UploadedFile):
    """A file part already written to the upload's folder: nothing to read or close here."""

    def __init__(self, name: str, size: int):
        super().__init__(file=None, name=name, size=size)

    def close(self) -> None:
        pass


class ArtefactUploadHandler(FileUploadHandler):
    """Writes each file part straight into the upload's local folder as it arrives, so no file
    is ever held in memory (`registry.storage` saves the folder to a remote storage once it has
    been inspected). A part's multipart field name is the file's path relative to the artefact
    folder (Django strips folders from the `filename` parameter)."""

    chunk_size = UPLOAD_CHUNK_SIZE

    def __init__(self, folder: Path, request=None):
        super().__init__(request)
        self.folder = folder
        self.received: list[str] = []
        self.total = 0
        self._stream: BinaryIO | None = None

    def new_file(self, field_name, *args, **kwargs):
        super().new_file(field_name, *args, **kwargs)
        relpath = services.artefact_upload_name_check(field_name)
        target = self.folder.joinpath(*relpath.parts)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._stream = target.open("xb")
        except FileExistsError:
            raise InvalidInput.for_field(
                "artefact_upload",
                f"{relpath} is sent twice; send each file once.",
                code="duplicate_file_name",
            ) from None
        except (NotADirectoryError, IsADirectoryError):
            raise InvalidInput.for_field(
                "artefact_upload",
                f"{relpath} clashes with another name sent (a file and a folder of one name).",
                code="invalid_file_name",
            ) from None
        self.received.append(str(relpath))

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        assert self._stream is not None  # new_file opened it
        # Counted as the bytes arrive, since a chunked body declares no length up front.
        self.total += len(raw_data)
        if self.total > settings.PEDIGREE_MAX_UPLOAD_BYTES:
            raise upload_too_large()
        self._stream.write(raw_data)
        return None

    def file_complete(self, file_size):
        self.close()
        return StoredFile(self.received[-1], file_size)

    def upload_interrupted(self):
        self.close()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


class ArtefactUploadSerializer(serializers.ModelSerializer):
    created_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    consumed_by: serializers.StringRelatedField[ModelVersion] = serializers.StringRelatedField(
        read_only=True, allow_null=True
    )
    format = serializers.SerializerMethodField()
    parameter_count = serializers.SerializerMethodField()
    expires_at = serializers.SerializerMethodField()

    class Meta:
        model = ArtefactUpload
        fields = [
            "id",
            "created_by",
            "created_at",
            "digest",
            "size",
            "format",
            "parameter_count",
            "consumed_by",
            "expires_at",
            "manifest",
        ]
        read_only_fields = fields

    def get_format(self, upload: ArtefactUpload) -> str:
        return upload.manifest["format"]

    def get_parameter_count(self, upload: ArtefactUpload) -> int:
        return weight_parameters(upload.manifest["parameters_by_dtype"])

    def get_expires_at(self, upload: ArtefactUpload) -> datetime | None:
        """When the uploads sweep deletes it unless a version takes it first."""
        if upload.consumed_by_id is not None:
            return None
        return upload.created_at + timedelta(hours=settings.PEDIGREE_UPLOAD_TTL_HOURS)


class UploadQuerySerializer(StrictFieldsMixin, serializers.Serializer):
    digest = serializers.RegexField(
        SHA256_PATTERN,
        required=False,
        help_text="the upload's manifest digest (64 lowercase hexadecimal characters)",
    )
    consumed = serializers.BooleanField(
        required=False, allow_null=True, help_text="whether a version holds it"
    )
    limit = serializers.IntegerField(required=False)
    offset = serializers.IntegerField(required=False)


class ArtefactUploadViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Artefact files streamed to the store, waiting to be registered as a version.

    POST multipart/form-data with one part per file, each part named by the file's path
    relative to the artefact folder (e.g. `1_Pooling/config.json`). The files are inspected
    once received; a refused upload leaves nothing behind. The same files sent again answer
    200 with the earlier upload while no version holds it and it has not expired. Token
    authentication only, so the body is parsed by the streaming handler and never before.

    GET `?digest=` (the manifest digest the client computes) and `?consumed=false` find an
    upload to register from without sending the files again.
    """

    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser]
    serializer_class = ArtefactUploadSerializer
    filter_backends = []

    def get_queryset(self):
        uploads = uploads_of(self.request.user)
        if self.action != "list":
            return uploads
        query = parsed_query(UploadQuerySerializer, self.request)
        if "digest" in query:
            uploads = uploads.filter(digest=query["digest"])
        if query.get("consumed") is not None:
            uploads = uploads.filter(consumed_by__isnull=not query["consumed"])
        return uploads

    @extend_schema(parameters=[UploadQuerySerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "additionalProperties": {"type": "string", "format": "binary"},
            }
        },
        responses={201: ArtefactUploadSerializer, 200: ArtefactUploadSerializer},
    )
    def create(self, request, *args, **kwargs):
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if (
            declared.isascii()
            and declared.isdigit()
            and int(declared)
            > (
                settings.PEDIGREE_MAX_UPLOAD_BYTES + UPLOAD_CHUNK_SIZE  # the multipart framing
            )
        ):
            raise upload_too_large()
        upload_id, folder = services.artefact_upload_start()
        handler = ArtefactUploadHandler(folder)
        request._request.upload_handlers = [handler]
        try:
            try:
                fields = [name for name in request.POST if name not in handler.received]
            except (TooManyFilesSent, TooManyFieldsSent) as error:
                raise InvalidInput.for_field(
                    "artefact_upload",
                    f"Too many parts in one upload ({error}); the server's Django settings "
                    "DATA_UPLOAD_MAX_NUMBER_FILES/FIELDS set the limit.",
                    code="too_many_files",
                ) from None
            if fields:
                raise InvalidInput.for_field(
                    "artefact_upload",
                    f"Only files are accepted; these parts are not files: {', '.join(fields)}.",
                    code="unexpected_field",
                )
            if not handler.received:
                raise InvalidInput.for_field(
                    "artefact_upload",
                    "The upload holds no files; send each file as a multipart part named by its "
                    "relative path.",
                    code="no_files",
                )
        except BaseException:
            handler.close()
            services.artefact_upload_discard(upload_id)
            raise
        upload, created = services.artefact_upload_finish(
            actor=acting_user(request), upload_id=upload_id
        )
        return Response(self.get_serializer(upload).data, status=201 if created else 200)


class ArtefactInspectInput(StrictFieldsMixin, serializers.Serializer):
    path = serializers.CharField(max_length=4096, trim_whitespace=False)


class ArtefactInspectionSerializer(serializers.ModelSerializer):
    requested_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    parameter_count = serializers.SerializerMethodField()
    url = serializers.HyperlinkedIdentityField(view_name="artefact-inspection-detail")

    class Meta:
        model = ArtefactInspection
        fields = [
            "id",
            "url",
            "requested_by",
            "path",
            "size",
            "status",
            "created_at",
            "finished_at",
            "parameter_count",
            "manifest",
            "error",
        ]
        read_only_fields = fields

    def get_parameter_count(self, inspection: ArtefactInspection) -> int | None:
        if inspection.status != InspectionStatus.DONE:
            return None
        return weight_parameters(inspection.manifest["parameters_by_dtype"])


class ArtefactInspectView(APIView):
    """Inspect the artefact at a path inside your team's area of the artefact roots (anywhere,
    for compliance staff): digests, parameter counts, format. Writes nothing to the catalogue,
    so an engineer can check files before registering them.

    Up to `PEDIGREE_INSPECT_INLINE_MAX_BYTES` the answer is 200 with the manifest. A larger
    artefact is inspected by a task: 202 with an inspection (its `url` in `Location`) to GET
    until its `status` is `done` (with the manifest) or `failed` (with the error envelope).
    """

    permission_classes = [IsAuthenticated]
    parser_classes = [BoundedJSONParser]

    @extend_schema(
        request=ArtefactInspectInput,
        responses={
            200: dict,
            202: ArtefactInspectionSerializer,
            404: OpenApiResponse(description="No artefact at that path that you may read."),
        },
    )
    def post(self, request):
        data = ArtefactInspectInput(data=request.data)
        data.is_valid(raise_exception=True)
        manifest, inspection = services.artefact_inspection_request(
            actor=acting_user(request), path=data.validated_data["path"]
        )
        if inspection is not None:
            body = ArtefactInspectionSerializer(inspection, context={"request": request}).data
            return Response(body, status=202, headers={"Location": str(body["url"])})
        assert manifest is not None
        return Response(
            {
                "parameter_count": weight_parameters(manifest["parameters_by_dtype"]),
                "manifest": manifest,
            }
        )


class ArtefactInspectionViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Inspections of large artefacts, run as tasks: each readable by whoever asked for it (and
    compliance staff); anyone else gets 404."""

    permission_classes = [IsAuthenticated]
    serializer_class = ArtefactInspectionSerializer
    filter_backends = []

    def get_queryset(self):
        return inspections_of(self.request.user)


@extend_schema_field(OpenApiTypes.STR)
class TeamSlugField(VisibleSlugField):
    """A team slug among the caller's teams (a plain string in the schema)."""


class HubImportInput(StrictFieldsMixin, serializers.Serializer):
    repo_id = serializers.CharField(max_length=193)
    revision = serializers.CharField(max_length=255, required=False)
    snapshot_dir = serializers.CharField(max_length=4096, required=False, trim_whitespace=False)
    team = TeamSlugField(slug_field="slug", visible=teams_visible_to)
    with_bases = serializers.BooleanField(
        default=False, help_text="Import the card's base models too, where not imported yet."
    )
    base_revisions = serializers.DictField(
        child=serializers.CharField(max_length=40),
        required=False,
        help_text="Base repo id → the commit SHA of it to link (default: the newest imported).",
    )


class HubImportView(APIView):
    """Import one revision of a Hugging Face Hub model as an upstream version.

    Reads the model card (licence, datasets, base models), pins the commit SHA and reads the
    safetensors headers; offline (HF_HUB_OFFLINE=1) from the local HF cache, or from
    `snapshot_dir` inside the artefact roots or the HF cache. The card's bases become parents:
    imported ones directly, others as unresolved references (or imported too, `with_bases`).
    201 when the version is created, 200 when that revision was imported before.
    """

    permission_classes = [IsAuthenticated]
    parser_classes = [BoundedJSONParser]

    @extend_schema(request=HubImportInput, responses={200: dict, 201: dict})
    def post(self, request):
        data = HubImportInput(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        version, created = services.upstream_import(
            actor=acting_user(request), **data.validated_data
        )
        card = version.hub_card
        names = {d.hub_id: d.name for d in hub_datasets_of(request.user, version)}
        return Response(
            {
                "created": created,
                "version": VersionSerializer(version, context={"request": request}).data,
                "licence": card.get("licence"),
                # In the card's order.
                "datasets": [names[hub_id] for hub_id in card["datasets"] if hub_id in names],
                # Each as a reference dataset version (no files) with its licence evidence.
                "training_data": hub_training_data_of(request.user, version),
                "base_models": hub_bases_of(request.user, version),
                "base_model_relation": card.get("base_model_relation"),
                "gated": card.get("gated"),
                "excluded_files": card.get("excluded_files", []),
            },
            status=201 if created else 200,
        )
