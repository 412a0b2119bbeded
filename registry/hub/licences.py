"""A model card's licence as the SPDX expression an imported version declares.

The mapping from Hub licence ids belongs to the app registered as the `HubLicenceResolution`
(licensing, with its catalogue). Without one, the Hub id is recorded as given and flagged for
review, so an import still works with the core alone.
"""

from dataclasses import dataclass
from typing import Any

from registry.hub.cards import CardInfo
from registry.hub.errors import HubError
from registry.plugins import HubLicenceResolution, plugins


@dataclass(frozen=True)
class LicenceMapping:
    hub_id: str
    expression: str
    review_required: bool
    reason: str
    license_name: str | None
    license_link: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "hub_id": self.hub_id,
            "expression": self.expression,
            "review_required": self.review_required,
            "reason": self.reason,
            "license_name": self.license_name,
            "license_link": self.license_link,
        }


# SPDX's word for "no licence information": what a card without `license:` declares.
NO_ASSERTION = "NOASSERTION"


def resolve_licence(card: CardInfo, *, repo_id: str) -> LicenceMapping:
    """The card's licence as an SPDX expression. A card without one imports as NOASSERTION, so
    the registry records that the model is in use; the licence check then fails on it."""
    if card.license is None:
        return LicenceMapping(
            hub_id="",
            expression=NO_ASSERTION,
            review_required=True,
            reason=f"The model card of {repo_id} declares no licence (no `license:` in its "
            "metadata): missing licence evidence. Find the licence the publisher grants and ask "
            "compliance to record the concluded licence.",
            license_name=card.license_name,
            license_link=card.license_link,
        )
    resolutions = plugins.contributions(HubLicenceResolution)
    if resolutions:
        try:
            result = resolutions[0].resolve(
                card.license, license_name=card.license_name, license_link=card.license_link
            )
        except ValueError as error:
            raise HubError(
                f"The model card of {repo_id} declares licence {card.license!r}: {error}",
                code="licence_unknown",
            ) from None
        expression, review, reason = result.expression, result.review_required, result.reason
    else:
        expression, review = card.license, True
        reason = (
            f"Hub licence {card.license!r} is recorded as given, unmapped: no licence catalogue "
            "is installed to map it to an SPDX expression."
        )
    return LicenceMapping(
        hub_id=card.license,
        expression=expression,
        review_required=review,
        reason=reason,
        license_name=card.license_name,
        license_link=card.license_link,
    )
