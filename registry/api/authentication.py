"""Token authentication that also reads, in the same query, whether the user is compliance
staff: every API request needs to know, and `is_compliance` then asks nothing more. An address
that failed to authenticate too often is refused before any credential is checked."""

from functools import cache
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from registry.api.throttling import FailedAuthenticationThrottle
from registry.selectors import compliance_group_member, remember_compliance


@cache
def _tokens() -> QuerySet[Any]:
    """Built once per process and cloned by each lookup: resolving the annotation's subquery
    cost as much as the rest of the lookup, on every request."""
    return Token.objects.select_related("user").annotate(compliance=compliance_group_member())


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate(self, request):
        throttle = FailedAuthenticationThrottle()
        if throttle.exhausted(request):
            raise exceptions.Throttled(throttle.wait())
        return super().authenticate(request)

    def authenticate_credentials(self, key):
        try:
            token = _tokens().get(key=key)
        except Token.DoesNotExist:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        remember_compliance(token.user, in_compliance_group=token.compliance)
        return (token.user, token)
