"""The REST transport of the client and of `pedigree`: token from PEDIGREE_TOKEN, URL from
PEDIGREE_URL, JSON in and out, error answers raised as `PedigreeError`s, and 503/429 answers
retried with exponential back-off that honours Retry-After."""

import os
import time
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

from pedigree_client.errors import (
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unavailable,
    error_from_response,
)

if TYPE_CHECKING:
    import requests

DEFAULT_URL = "http://127.0.0.1:8000"
# Answers that mean "not now": nothing was done, so asking again is safe for any method.
RETRIED_STATUSES = (429, 503)

# Every answer of the API is a JSON object; its fields are as loose as the server's schema.
JSON = dict[str, Any]
# A query-string value; None leaves the parameter out.
Param = str | int | float | None


class ApiClient:
    """`retries` more attempts after a 503 or 429, waiting Retry-After when the server says
    (giving up at once when that is over `max_delay` seconds), else `backoff` * 2**n seconds."""

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        timeout: float = 60,
        *,
        retries: int = 4,
        backoff: float = 0.5,
        max_delay: float = 60,
    ) -> None:
        self.base_url = (base_url or os.environ.get("PEDIGREE_URL") or DEFAULT_URL).rstrip("/")
        self.token = token if token is not None else os.environ.get("PEDIGREE_TOKEN", "")
        if not self.token:
            raise PermissionDenied(
                None,
                "not_authenticated",
                "No API token: set PEDIGREE_TOKEN (make demo prints one; or create one in the "
                "admin under 'Tokens').",
            )
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_delay = max_delay
        # Imported here, not with the module: a third of `pedigree`'s start-up, which
        # commands that never reach the server (`--help`, `artefacts inspect`) need not pay.
        import requests

        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {self.token}"
        self.session.headers["Accept"] = "application/json"

    def url(self, path: str) -> str:
        return f"{self.base_url}/api/v1/{path.lstrip('/')}"

    def request(self, method: str, path: str, **kwargs: Any) -> JSON:
        """The answer's JSON object ({} when it has no body); an error answer raises."""
        kwargs.setdefault("timeout", self.timeout)
        rewind = getattr(kwargs.get("data"), "seek", None)
        for attempt in range(self.retries + 1):
            if attempt and rewind is not None:
                rewind(0)  # a streamed upload is sent again from its start
            response = self._send(method, path, kwargs)
            if response.status_code not in RETRIED_STATUSES:
                break
            retry_after = _retry_after(response)
            delay = self.backoff * 2**attempt if retry_after is None else retry_after
            if attempt == self.retries or delay > self.max_delay:
                raise error_from_response(response, retry_after=retry_after)
            time.sleep(delay)
        if response.status_code >= 400:
            raise error_from_response(response)
        if response.status_code == 204 or not response.content:
            return {}
        answer = response.json()
        if not isinstance(answer, dict):
            raise InvalidInput(
                None,
                "not_an_object",
                f"Pedigree at {self.base_url} answered {method} {path} with a JSON "
                f"{type(answer).__name__}, not an object; is PEDIGREE_URL right?",
            )
        return answer

    def _send(self, method: str, path: str, kwargs: dict[str, Any]) -> "requests.Response":
        import requests  # loaded already, by __init__

        try:
            return self.session.request(method, self.url(path), **kwargs)
        except requests.ConnectionError:
            raise Unavailable(
                None,
                "unreachable",
                f"Cannot reach Pedigree at {self.base_url}; is the server running "
                "(make demo), and is PEDIGREE_URL right?",
            ) from None
        except requests.Timeout:
            raise Unavailable(
                None, "timeout", f"Pedigree at {self.base_url} did not answer in {self.timeout}s."
            ) from None

    def get(self, path: str, **params: Param) -> JSON:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, payload: JSON | None = None, **kwargs: Any) -> JSON:
        return self.request("POST", path, json=payload, **kwargs)

    def list_all(self, path: str, **params: Param) -> list[JSON]:
        """Follow pagination to the end."""
        params = {k: v for k, v in params.items() if v is not None}
        params.setdefault("limit", 200)
        offset = 0
        results: list[JSON] = []
        while True:
            page = self.get(path, **params, offset=offset)
            results.extend(page["results"])
            if not page.get("next"):
                return results
            offset += len(page["results"])

    def version(self, ref: str) -> JSON:
        """Find a version by `MODEL@VERSION` or numeric id."""
        if ref.isdigit():
            return self.get(f"versions/{ref}/")
        name, sep, label = ref.rpartition("@")
        if not sep or not name or not label:
            raise InvalidInput(
                None, "invalid", f"'{ref}' is not a version reference; write it as MODEL@VERSION."
            )
        page = self.get("versions/", model=name, version=label)
        if not page["results"]:
            raise NotFound(None, "not_found", f"No version {ref} that you can see.")
        return cast(JSON, page["results"][0])


def version_path(ref: str | int, action: str = "") -> str:
    """The API path of a version named by `MODEL@VERSION` or numeric id (its "/" encoded)."""
    return f"versions/{quote(str(ref), safe='@')}/{action}"


def _retry_after(response: "requests.Response") -> float | None:
    """Retry-After in seconds: a number, or an HTTP date."""
    from email.utils import parsedate_to_datetime

    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())
