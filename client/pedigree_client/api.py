"""The REST client behind `pedigree`: token from PEDIGREE_TOKEN, URL from PEDIGREE_URL."""

import os
from typing import Any, cast

import requests

DEFAULT_URL = "http://127.0.0.1:8000"

# Every answer of the API is a JSON object; its fields are as loose as the server's schema.
JSON = dict[str, Any]
# A query-string value; None leaves the parameter out.
Param = str | int | float | None


class CliError(Exception):
    """A failure to show the user as one line; `exit_code` 2 means usage/connection trouble."""

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class ApiClient:
    def __init__(
        self, base_url: str | None = None, token: str | None = None, timeout: float = 60
    ) -> None:
        self.base_url = (base_url or os.environ.get("PEDIGREE_URL") or DEFAULT_URL).rstrip("/")
        self.token = token if token is not None else os.environ.get("PEDIGREE_TOKEN", "")
        if not self.token:
            raise CliError(
                "No API token: set PEDIGREE_TOKEN (make demo prints one; or create one in the "
                "admin under 'Tokens')."
            )
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {self.token}"
        self.session.headers["Accept"] = "application/json"

    def url(self, path: str) -> str:
        return f"{self.base_url}/api/v1/{path.lstrip('/')}"

    def request(
        self, method: str, path: str, *, allow: tuple[int, ...] = (), **kwargs: Any
    ) -> JSON:
        """The answer's JSON object ({} when it has no body); an error status raises CliError
        unless listed in `allow`."""
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self.session.request(method, self.url(path), **kwargs)
        except requests.ConnectionError:
            raise CliError(
                f"Cannot reach Pedigree at {self.base_url}; is the server running "
                "(make demo), and is PEDIGREE_URL right?"
            ) from None
        except requests.Timeout:
            raise CliError(
                f"Pedigree at {self.base_url} did not answer in {self.timeout}s."
            ) from None
        if response.status_code >= 400 and response.status_code not in allow:
            raise CliError(_error_message(response), exit_code=2)
        if response.status_code == 204 or not response.content:
            return {}
        answer = response.json()
        if not isinstance(answer, dict):
            raise CliError(
                f"Pedigree at {self.base_url} answered {method} {path} with a JSON "
                f"{type(answer).__name__}, not an object; is PEDIGREE_URL right?"
            )
        return answer

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
            raise CliError(f"'{ref}' is not a version reference; write it as MODEL@VERSION.")
        page = self.get("versions/", model=name, version=label)
        if not page["results"]:
            raise CliError(f"No version {ref} that you can see.")
        return cast(JSON, page["results"][0])


def _error_message(response: requests.Response) -> str:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code} from {response.url}"
    message = f"{error.get('message', 'request failed')} (HTTP {response.status_code})"
    fields = error.get("fields") or {}
    extra = [
        f"  {name}: {' '.join(msgs)}"
        for name, msgs in fields.items()
        if f"{name}: {msgs[0]}" not in message
    ]
    return "\n".join([message, *extra])
