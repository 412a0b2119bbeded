"""Writes to the catalogue. Every write checks permission, validates, and is audited atomically.

One module per seam; callers use the names re-exported here (`services.version_promote(...)`).
"""

from registry.services._common import (
    refuse_taken_label,
    require_team_write,
    snapshot,
)
from registry.services.artefacts import (
    VersionDraft,
    artefact_inspect,
    artefact_upload_discard,
    artefact_upload_finish,
    artefact_upload_name_check,
    artefact_upload_start,
    uploads_sweep,
    version_draft_prepare,
    version_draft_save,
    version_register,
)
from registry.services.catalogue import (
    DATASET_UPDATABLE,
    MODEL_UPDATABLE,
    dataset_create,
    dataset_update,
    dataset_version_create,
    dataset_version_update,
    model_create,
    model_update,
    team_create,
    team_member_add,
    team_members_set_audit,
    team_update,
    version_create,
    version_update,
)
from registry.services.compliance import compliance_recheck, compliance_recheck_after_commit
from registry.services.events import (
    WEBHOOK_ENDPOINT_UPDATABLE,
    deliveries_sweep,
    delivery_stale_before,
    event_publish,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_update,
    webhook_events_validate,
)
from registry.services.governance import (
    approval_record,
    check_waiver_grant,
    check_waiver_revoke,
    stage_policy_update,
    version_promote,
)
from registry.services.proposals import (
    dataset_version_edit,
    evidence_proposal_accept,
    evidence_proposal_reject,
    version_edit,
)
from registry.services.upstream import upstream_import

__all__ = [
    "DATASET_UPDATABLE",
    "MODEL_UPDATABLE",
    "WEBHOOK_ENDPOINT_UPDATABLE",
    "VersionDraft",
    "approval_record",
    "artefact_inspect",
    "artefact_upload_discard",
    "artefact_upload_finish",
    "artefact_upload_name_check",
    "artefact_upload_start",
    "check_waiver_grant",
    "check_waiver_revoke",
    "compliance_recheck",
    "compliance_recheck_after_commit",
    "dataset_create",
    "dataset_update",
    "dataset_version_create",
    "dataset_version_edit",
    "dataset_version_update",
    "deliveries_sweep",
    "delivery_stale_before",
    "event_publish",
    "evidence_proposal_accept",
    "evidence_proposal_reject",
    "model_create",
    "model_update",
    "refuse_taken_label",
    "require_team_write",
    "snapshot",
    "stage_policy_update",
    "team_create",
    "team_member_add",
    "team_members_set_audit",
    "team_update",
    "uploads_sweep",
    "upstream_import",
    "version_create",
    "version_draft_prepare",
    "version_draft_save",
    "version_edit",
    "version_promote",
    "version_register",
    "version_update",
    "webhook_endpoint_create",
    "webhook_endpoint_delete",
    "webhook_endpoint_update",
    "webhook_events_validate",
]
