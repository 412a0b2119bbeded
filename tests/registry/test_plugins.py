"""The plug-in registry: what each installed app contributes to the core, and its rules."""

import django_filters
import pytest

from registry.plugins import (
    DashboardPanel,
    EvaluationResultsProvider,
    GateCheck,
    HubLicenceResolution,
    InvolvementProvider,
    LicenceValidator,
    PluginRegistry,
    VersionListFilter,
    VersionPanel,
    plugins,
)


def test_every_app_registers_its_contributions_in_installed_order():
    assert [check.name for check in plugins.contributions(GateCheck)] == [
        "metadata",
        "approvals",
        "lineage_health",
        "licence",
        "quality",
        "fairness",
        "no_negative_transfer",
    ]
    assert [panel.template for panel in plugins.contributions(VersionPanel)] == [
        "lineage/version_panel.html",
        "licensing/version_panel.html",
        "evaluators/version_panel.html",
    ]
    assert [panel.title for panel in plugins.contributions(DashboardPanel)] == ["Evaluations"]
    assert [f.name for f in plugins.contributions(VersionListFilter)] == [
        "descends_from",
        "trained_on",
    ]
    for kind in (
        InvolvementProvider,
        EvaluationResultsProvider,
        LicenceValidator,
        HubLicenceResolution,
    ):
        assert len(plugins.contributions(kind)) == 1


def test_registering_again_is_a_no_op_and_a_taken_name_is_refused():
    registry = PluginRegistry()
    first = GateCheck("metadata", lambda context: None)
    registry.register(first, VersionPanel("a.html", lambda request, version: {}))
    registry.register(first)
    assert registry.contributions(GateCheck) == [first]
    with pytest.raises(ValueError, match="another GateCheck is registered as 'metadata'"):
        registry.register(GateCheck("metadata", lambda context: None))
    with pytest.raises(ValueError, match="another VersionPanel"):
        registry.register(VersionPanel("a.html", lambda request, version: {}))
    registry.register(VersionListFilter("near", django_filters.NumberFilter()))
    with pytest.raises(ValueError, match="as 'near'"):
        registry.register(VersionListFilter("near", django_filters.NumberFilter()))
    registry.register(HubLicenceResolution(lambda hub_id, **names: None))
    with pytest.raises(ValueError, match=r"another HubLicenceResolution is registered$"):
        registry.register(HubLicenceResolution(lambda hub_id, **names: None))
    assert registry.contributions(InvolvementProvider) == []
