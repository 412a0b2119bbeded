"""The live OpenAPI schema as schemathesis reads it, a small catalogue of every kind of
object, and `exchange`: one request through the WSGI app whose answer must keep the schema."""

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from rest_framework.authtoken.models import Token
from werkzeug.test import Client, TestResponse

from config.wsgi import application
from licensing.models import HubLicenceMapping, LicenceWaiver
from lineage import services as lineage_services
from lineage.services import DatasetUse, ParentSpec
from registry import services
from registry.models import StagePolicy

# The schema `/api/schema/` serves, read through the WSGI app as a client would.
SCHEMA = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@pytest.fixture(autouse=True)
def _connection_kept_open():
    """Requests run through the WSGI app inside the test's transaction: as Django's own test
    client does, keep the handler from closing the connection when a request ends (on
    PostgreSQL that would end the transaction and every request after it)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def exchange():
    """`exchange(user, "GET", "/api/v1/versions/{id}/gate/", url)`: the answer, after
    schemathesis has checked its status, content type and body against that operation."""

    def call(user, method: str, template: str, url: str, **kwargs) -> TestResponse:
        headers = {}
        if user is not None:
            headers["Authorization"] = f"Token {Token.objects.get_or_create(user=user)[0].key}"
        response = Client(application).open(url, method=method, headers=headers, **kwargs)
        SCHEMA[template][method].validate_response(response)
        return response

    return call


@pytest.fixture
def catalogue(
    settings,
    tmp_path,
    seeded,
    engineer,
    outsider,
    compliance_user,
    team,
    other_team,
    make_model,
    make_version,
    make_dataset_version,
):
    """A few objects of every kind, so that generated ids often name real ones: an upstream base,
    a derived version trained on a dataset, another team's private descendant with a hold (a
    hidden node for the engineer), an archived version, and the governance records around them."""
    settings.ARTEFACT_ROOTS = [tmp_path / "artefacts"]
    settings.ARTEFACT_STORE = tmp_path / "artefacts"
    settings.ARTEFACT_ROOTS[0].mkdir()
    settings.HUB_ALLOWED_HOSTS = []
    base_model = make_model("upstream/base", kind="upstream", visibility="internal")
    base = make_version(base_model, version="main")
    data = make_dataset_version("acme/tickets")
    derived = make_version(make_model("acme/classifier"), version="v1")
    lineage_services.edges_create(
        actor=engineer, child=derived, parents=[ParentSpec(base, "adapter")]
    )
    lineage_services.training_run_record(
        actor=engineer,
        version=derived,
        method="feature_extraction",
        hyperparameters={"head": "linear", "pooling": "mean", "epochs": 4, "learning_rate": 0.05},
        datasets=[DatasetUse(data, "train")],
    )
    hidden = make_version(
        make_model("globex/secret", actor=outsider, owner=other_team), actor=outsider
    )
    lineage_services.edges_create(
        actor=outsider, child=hidden, parents=[ParentSpec(base, "adapter")]
    )
    hold = lineage_services.hold_place(
        actor=compliance_user, version=hidden, reason="Licence under review"
    )
    retired = make_version(make_model("acme/retired"), version="old")
    services.version_promote(actor=engineer, version=retired, stage="archived")
    # Keyed by the first path segment after /api/v1/ (and `edge_id`); versions: base, derived,
    # hidden, retired (archived).
    return {
        "versions": [base.pk, derived.pk, hidden.pk, retired.pk],
        "holds": [hold.pk],
        "datasets": [data.dataset_id],
        "dataset-versions": [data.pk],
        "stage-policies": list(StagePolicy.objects.values_list("pk", flat=True)[:3]),
        "teams": [team.pk, other_team.pk],
        "models": [base_model.pk, derived.model_id],
        "hub-licences": list(HubLicenceMapping.objects.values_list("hub_id", flat=True)[:3]),
        "licences": ["MIT", "Apache-2.0", "CC-BY-NC-4.0"],
        "licence-waivers": list(LicenceWaiver.objects.values_list("pk", flat=True)),
        "edge_id": list(derived.parent_edges.values_list("pk", flat=True)),
    }
