"""Who a request comes from, for rate limits and the admin sign-in lockout."""

from django.http import HttpRequest
from rest_framework.throttling import BaseThrottle


def client_address(request: HttpRequest) -> str:
    """The client's address: the last proxy's X-Forwarded-For entry with PEDIGREE_BEHIND_PROXY
    (DRF's NUM_PROXIES), else the connection's, so a client cannot pick its own."""
    return BaseThrottle().get_ident(request)  # type: ignore[arg-type]
