"""Check waivers and licence waivers in one look: from the failing check on a version's
banner, each opens its form pre-filled from the violation, with the same date widget."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

pytestmark = pytest.mark.django_db


def field_value(html: str, name: str) -> str:
    tag = re.search(rf'<(?:input|textarea)[^>]*name="{name}"[^>]*>([^<]*)', html)
    assert tag, f"no field {name}"
    value = re.search(r'value="([^"]*)"', tag.group(0))
    # A textarea's first newline is not part of its value.
    return unescape(value.group(1) if value else tag.group(1).removeprefix("\n"))


def test_a_licence_violation_is_waived_from_the_banner_like_any_check(
    client, minilm, derive, dataset, compliance_user, approver, conclude, settings
):
    tuned = derive("acme/support-intent", minilm, datasets=[dataset("acme/r", "CC-BY-NC-4.0")])
    conclude(tuned, "Apache-2.0")
    compliance_user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label__in=["registry", "licensing"])
    )
    client.force_login(compliance_user)
    page = client.get(f"/admin/registry/modelversion/{tuned.pk}/change/").content.decode()
    banner = page[page.index('id="verdict"') : page.index("</section>")]
    licence = banner[banner.index('class="failing-licence"') :]
    links = re.findall(r'class="button waive-link" href="([^"]+)">([^<]+)</a>', licence)
    [(url, label)] = [link for link in links if "licencewaiver" in link[0]]
    assert label == "Waive non-commercial-use (CC-BY-NC-4.0)…"

    form = client.get(unescape(url)).content.decode()
    assert field_value(form, "version") == str(tuned.pk)
    assert field_value(form, "rule_name") == "non-commercial-use"
    assert field_value(form, "licence_id") == "CC-BY-NC-4.0"
    assert field_value(form, "reason").startswith("Accepted risk: ")
    expires = field_value(form, "expires_at")
    in_30_days = (timezone.now() + timedelta(days=30)).date().isoformat()
    assert expires.startswith(in_30_days) and "T" in expires
    # The same widget as a check waiver on the governance page.
    assert re.search(
        r'type="datetime-local"[^>]*name="expires_at"|name="expires_at"[^>]*type="datetime-local"',
        form,
    )
    governance = client.get(
        f"/admin/registry/modelversion/{tuned.pk}/governance/?waive=metadata"
    ).content.decode()
    assert re.search(
        r'type="datetime-local"[^>]*name="expires_at"|name="expires_at"[^>]*type="datetime-local"',
        governance,
    )

    granted = client.post(
        unescape(url).split("?")[0],
        {
            "version": tuned.pk,
            "rule_name": "non-commercial-use",
            "licence_id": "CC-BY-NC-4.0",
            "reason": field_value(form, "reason") + "the licensor agreed by letter.",
            "approver": approver.pk,
            "expires_at": expires,
        },
    )
    assert granted.status_code == 302, granted.context["adminform"].form.errors
    waiver = tuned.licence_waivers.get()
    assert waiver.expires_at.strftime("%Y-%m-%dT%H:%M") == expires
    page = client.get(f"/admin/registry/modelversion/{tuned.pk}/change/").content.decode()
    banner = page[page.index('id="verdict"') : page.index("</section>")]
    assert "Waive non-commercial-use" not in banner
