"""The admin: the lineage picture on the version page, why a version is held, holds."""

import re

import pytest

from lineage import services
from lineage.models import HeldThrough, Hold
from registry.models import AuditEntry

pytestmark = pytest.mark.django_db


def node_positions(svg: str) -> dict[str, float]:
    """data-key of each node → the y of its box."""
    return {
        key: float(y)
        for key, y in re.findall(
            r'data-key="(\w+)">.*?<rect x="[\d.]+" y="([\d.]+)"', svg, flags=re.S
        )
    }


@pytest.fixture
def held_family(base, derive, compliance_user, make_dataset_version, engineer):
    tuned = derive(base, relation="adapter")
    services.training_run_record(
        actor=engineer,
        version=tuned,
        method="feature_extraction",
        hyperparameters={"head": "linear"},
        datasets=[services.DatasetUse(make_dataset_version("acme/tickets"), "train")],
    )
    quantized = derive(tuned, relation="quantized")
    hold = services.hold_place(
        actor=compliance_user,
        version=tuned,
        reason="Training data contained customer e-mails",
        category="data",
    )
    return {"tuned": tuned, "quantized": quantized, "hold": hold}


def test_version_page_shows_the_lineage_picture_and_why_it_is_held(
    client, officer, base, held_family
):
    client.force_login(officer)
    quantized = held_family["quantized"]
    page = client.get(f"/admin/registry/modelversion/{quantized.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<h2>Lineage</h2>" in html and "<svg" in html
    assert "is held and cannot be promoted" in html
    assert f"held through its ancestor {held_family['tuned']}" in html
    assert "Training data contained customer e-mails" in html and "placed by carol" in html
    # Relations on edges, stage and hold state on nodes, dataset nodes with their role.
    for text in (">adapter<", ">quantized<", ">train<", "development · HELD", "acme/tickets@v1"):
        assert text in html, text
    # No CDN, no script: a self-contained picture.
    assert "<script" not in html.split("<h2>Lineage</h2>")[1].split("</fieldset>")[0]
    svg = html.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert "http://" not in svg.replace("http://www.w3.org/2000/svg", "")


def test_standalone_svg_has_parents_above_children(client, officer, base, held_family):
    client.force_login(officer)
    tuned, quantized = held_family["tuned"], held_family["quantized"]
    response = client.get(f"/admin/lineage/lineageedge/graph/{tuned.pk}.svg")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("image/svg+xml")
    svg = response.content.decode()
    assert svg.startswith("<svg xmlns=")
    y = node_positions(svg)
    assert y[f"v{base.pk}"] < y[f"v{tuned.pk}"] < y[f"v{quantized.pk}"]
    assert 'class="node held' in svg


def test_svg_is_for_staff_with_view_permission(client, engineer, compliance_user, base):
    url = f"/admin/lineage/lineageedge/graph/{base.pk}.svg"
    assert client.get(url).status_code == 302  # to the admin login
    client.force_login(engineer)
    assert client.get(url).status_code == 302  # not staff
    client.force_login(compliance_user)  # staff, but without the view permission
    assert client.get(url).status_code == 403


def test_hold_admin_places_and_lifts_through_the_services(client, officer, base, derive):
    child = derive(base)
    client.force_login(officer)
    response = client.post(
        "/admin/lineage/hold/add/",
        {
            "version": base.pk,
            "category": "security",
            "reason": "CVE in tokenizer",
            "reference": "https://example.org/advisory/1",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    hold = Hold.objects.get()
    assert hold.placed_by == officer
    assert set(HeldThrough.objects.values_list("version_id", flat=True)) == {base.pk, child.pk}
    assert AuditEntry.objects.filter(action="hold.place").count() == 1
    page = client.get(f"/admin/lineage/hold/{hold.pk}/change/").content.decode()
    assert "Lift the hold because" in page and "CVE in tokenizer" in page
    response = client.post(
        f"/admin/lineage/hold/{hold.pk}/change/", {"lift_reason_given": "Patched upstream"}
    )
    assert response.status_code == 302
    hold.refresh_from_db()
    assert not hold.active and hold.lift_reason == "Patched upstream"
    assert not HeldThrough.objects.exists()


def test_hold_form_shows_bad_input_and_writes_nothing(client, officer, base):
    client.force_login(officer)

    response = client.post(
        "/admin/lineage/hold/add/", {"version": base.pk, "category": "security", "reason": "  "}
    )

    assert response.status_code == 200
    assert "reason" in response.context["adminform"].form.errors
    assert not Hold.objects.exists()
    assert not AuditEntry.objects.filter(action="hold.place").exists()


def test_lifting_a_hold_without_compliance_is_403(client, make_user, team, base, compliance_user):
    from django.contrib.auth.models import Permission

    hold = services.hold_place(actor=compliance_user, version=base, reason="CVE in tokenizer")
    insider = make_user("ivo", teams=[team], is_staff=True)
    insider.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_hold", "change_hold"])
    )
    client.force_login(insider)

    response = client.post(
        f"/admin/lineage/hold/{hold.pk}/change/", {"lift_reason_given": "Looks fine to me"}
    )

    assert response.status_code == 403
    hold.refresh_from_db()
    assert hold.active
    assert not AuditEntry.objects.filter(action="hold.lift").exists()
