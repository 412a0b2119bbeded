"""Outbound HTTP to webhook receivers, confined to the public internet.

A destination's host is resolved and every address it resolves to is checked: loopback,
private, link-local (the cloud metadata service at 169.254.169.254 among them), multicast,
reserved and unspecified addresses are refused unless `PEDIGREE_WEBHOOK_ALLOWED_HOSTS` names
the host or the address. The request then goes to the address that was checked (so a second,
different DNS answer cannot redirect it), redirects are not followed, and what is kept of a
failure is the status and reason, never the receiver's body.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from django.conf import settings

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class EgressRefused(Exception):
    """The destination may not be called; the message says why."""


class DeliveryFailed(Exception):
    """The receiver did not take the delivery; the message is its status and reason only."""


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    port: int
    path: str
    address: str  # the checked IP the request connects to


def _forbidden(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    # Loopback, private, link-local, reserved and unspecified addresses are all not global.
    return not address.is_global or address.is_multicast


def destination_check(url: str, *, resolve: bool = True) -> Destination | None:
    """Check a webhook URL; the destination to connect to, or None when `resolve` is False or
    the host does not resolve yet (creation accepts it; delivery checks it again)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EgressRefused("A webhook URL must be http:// or https:// with a host name.")
    if parts.username or parts.password:
        raise EgressRefused("A webhook URL must not carry credentials; use the signing secret.")
    host = parts.hostname.lower()
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise EgressRefused("The webhook URL's port is not a number from 1 to 65535.") from None
    allowed = {name.lower() for name in settings.PEDIGREE_WEBHOOK_ALLOWED_HOSTS}
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        if not resolve:
            return None
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            return None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]
    refused = [
        str(address)
        for address in addresses
        if _forbidden(address) and host not in allowed and str(address) not in allowed
    ]
    if refused:
        raise EgressRefused(
            f"{host} resolves to {', '.join(sorted(set(refused)))}, a loopback, private, "
            "link-local or otherwise non-public address; webhooks go to public receivers "
            "(operators may allow a host in PEDIGREE_WEBHOOK_ALLOWED_HOSTS)."
        )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(parts.scheme, host, port, path, str(addresses[0]))


def webhook_post(url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> None:
    """POST `body` to `url` through the checks above. Raises `EgressRefused` when the
    destination is refused or does not resolve, `DeliveryFailed` when it answers other than
    2xx (redirects included) or cannot be reached."""
    destination = destination_check(url)
    if destination is None:
        raise DeliveryFailed(f"{urlsplit(url).hostname} does not resolve.")
    limit = urllib3.Timeout(total=timeout)
    if destination.scheme == "https":
        # The TLS name and certificate check stay those of the URL's host.
        pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
            destination.address,
            destination.port,
            server_hostname=destination.host,
            assert_hostname=destination.host,
            cert_reqs="CERT_REQUIRED",
            timeout=limit,
            retries=False,
        )
    else:
        pool = urllib3.HTTPConnectionPool(
            destination.address, destination.port, timeout=limit, retries=False
        )
    host_header = destination.host + (
        "" if destination.port in (80, 443) else f":{destination.port}"
    )
    try:
        with pool:
            response = pool.urlopen(
                "POST",
                destination.path,
                body=body,
                headers={**headers, "Host": host_header},
                redirect=False,
                preload_content=False,
            )
            status, reason = response.status, response.reason
            response.release_conn()
    except urllib3.exceptions.HTTPError as error:
        raise DeliveryFailed(
            f"{type(error).__name__}: the receiver could not be reached."
        ) from None
    if not 200 <= status < 300:
        raise DeliveryFailed(f"HTTP {status} {reason or ''}".strip())
