"""The API's tenancy contract, route by route (in the manner of netbox's generic API test
mixins): every operation of every route of the URL conf is either covered by a `Case` saying
how another team's private object is reached through it, or exempted with the reason it holds
nothing of any team. `RouteContract` asserts, for a covered operation:

* anonymous callers get 401 in the error envelope;
* list operations never show another team's private objects (their owner does see them, so the
  absence proves the queryset filter, not an empty table);
* detail, nested and write operations answer another team 404 in the envelope, with no name,
  digest or reason of the object in the body, and change nothing in the database;
* creations that name another team's objects are refused with a 4xx and change nothing;
* fields the server owns (what an operation answers but does not accept) are refused with a 400
  naming them.

A route or method added to the URL conf without a `Case` or an exemption fails
`unclassified_operations`, so it cannot escape the contract.
"""

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver, reverse

# Methods a route answers beyond these (HEAD, OPTIONS) read nothing of any object.
METHODS = ("get", "post", "put", "patch", "delete")
# The project's apps whose rows a refused request must leave untouched.
PROJECT_APPS = ("registry", "lineage", "evaluators", "licensing")

LIST, READ, WRITE, CREATE = "list", "read", "write", "create"


@dataclass(frozen=True)
class Operation:
    name: str  # the URL name
    method: str
    route: str  # the pattern, for messages

    @property
    def key(self) -> str:
        return f"{self.method.upper()} {self.name}"


@dataclass(frozen=True)
class Case:
    """How one operation reaches the other team's object (`world` holds them by name).

    `kind`: LIST (another team must not see it in the answer), READ (404 for another team, 200
    for the owner), WRITE (404 for another team, nothing changed) or CREATE (the body names
    another team's objects: a 4xx, nothing changed). `kwargs` fill the URL from the world (each
    alternative is tried: a version by id and by MODEL@VERSION); `query` and `body` are sent as
    they are. `owner_body`, when set, is what the owner sends when the server-owned fields are
    tried one by one (None: the operation takes no JSON body to try them on). `server_owned`
    adds fields the schema does not show (an untyped answer)."""

    kind: str
    kwargs: Callable[[Any], list[dict[str, Any]]] = lambda world: [{}]
    query: Callable[[Any], dict[str, Any]] = lambda world: {}
    body: Callable[[Any], dict[str, Any]] = lambda world: {}
    owner_body: Callable[[Any], dict[str, Any]] | None = None
    server_owned: tuple[str, ...] = ()
    # Who owns the object, as a world attribute (the owner's positive control for READ/LIST).
    owner: str = "alice"


def _walk(patterns, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, route)
        else:
            yield route, pattern


def _methods(pattern: URLPattern) -> set[str]:
    callback = pattern.callback
    view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    allowed = set(getattr(view, "http_method_names", METHODS))
    actions = getattr(callback, "actions", None)
    if actions is not None:  # a viewset: the router's method → action map
        return {m for m in actions if m in allowed and m in METHODS}
    if view is None:
        return {"get"}
    return {m for m in METHODS if m in allowed and hasattr(view, m)}


def api_operations(prefix: str = "api/") -> list[Operation]:
    """Every (URL name, method) under `prefix` in the URL conf, DRF's format-suffix variants of a
    route counted once (they reach the same view)."""
    found: dict[tuple[str, str], Operation] = {}
    for route, pattern in _walk(get_resolver().url_patterns):
        if not route.startswith(prefix) or "format" in pattern.pattern.regex.groupindex:
            continue
        assert pattern.name, f"route {route} has no name: the contract keys operations by name"
        for method in _methods(pattern):
            found.setdefault((pattern.name, method), Operation(pattern.name, method, route))
    return sorted(found.values(), key=lambda op: (op.name, op.method))


def unclassified_operations(cases: dict[str, Case], exempt: dict[str, str]) -> list[str]:
    """Operations of the URL conf with neither a case nor an exemption."""
    return [op.key for op in api_operations() if op.key not in cases and op.key not in exempt]


def stale_entries(cases: dict[str, Case], exempt: dict[str, str]) -> list[str]:
    """Entries naming an operation the URL conf no longer has."""
    known = {op.key for op in api_operations()}
    return sorted((set(cases) | set(exempt)) - known)


def database_state() -> dict[str, list[tuple]]:
    """Every row of the project's tables, to compare before and after a refused request."""
    state = {}
    for app in PROJECT_APPS:
        if not apps.is_installed(app):
            continue
        for model in apps.get_app_config(app).get_models():
            columns = [f.attname for f in model._meta.concrete_fields]
            rows = model._default_manager.order_by("pk").values_list(*columns)
            state[model._meta.label] = [tuple(map(repr, row)) for row in rows]
    return state


def changed_tables(before: dict, after: dict) -> list[str]:
    return [label for label in before if before[label] != after.get(label)]


def server_owned_fields(schema: dict, path: str, method: str) -> set[str]:
    """What the operation answers that it does not accept: the fields the server owns (by the
    OpenAPI schema: the answer's properties less the request body's)."""
    components = schema["components"]["schemas"]

    def properties(node: dict | None) -> set[str] | None:
        if not node:
            return None
        if node.get("type") == "array":  # a list of them: the items' fields
            node = node.get("items") or {}
        if "$ref" in node:
            node = components[node["$ref"].rsplit("/", 1)[-1]]
        return set(node.get("properties") or {}) or None

    shape = re.sub(r"\{[^}]+\}", "{}", path)
    (operation,) = [
        item[method]
        for name, item in schema["paths"].items()
        if re.sub(r"\{[^}]+\}", "{}", name) == shape
    ]
    request = (operation.get("requestBody") or {}).get("content", {}).get("application/json", {})
    answers = [
        answer.get("content", {}).get("application/json", {}).get("schema")
        for status, answer in operation["responses"].items()
        if status.startswith("2")
    ]
    accepted = properties(request.get("schema")) or set()
    answered = set().union(*(properties(answer) or set() for answer in answers))
    return answered - accepted


def schema_path(op: Operation) -> str:
    """The OpenAPI path of an operation (its parameters as `{name}`)."""
    route = op.route.replace("^", "").replace("$", "")
    route = re.sub(r"\(\?P<(\w+)>(?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)", r"{\1}", route)
    route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
    return "/" + route


def enveloped(response, status: int) -> dict:
    assert response.status_code == status, (
        f"expected {status}, got {response.status_code}: {response.content[:400]!r}"
    )
    body = json.loads(response.content)
    assert set(body) == {"error"} and body["error"]["status"] == status, body
    return body["error"]


@dataclass
class RouteContract:
    """The assertions of the contract for one operation, against a world of objects private to
    one team (`owner`, default `alice` of acme) and a member of another team (`bob` of beta).
    `secrets` are strings (names, digests, reasons) that no answer to bob may contain."""

    op: Operation
    case: Case
    world: Any
    api_for: Callable
    secrets: list[str] = field(default_factory=list)

    def urls(self) -> list[tuple[str, set[str]]]:
        """Each URL to try, with the text of its own parameters (which an answer may echo)."""
        urls = []
        for kwargs in self.case.kwargs(self.world):
            url = reverse(self.op.name, kwargs=kwargs)
            urls.append((url, {str(value) for value in kwargs.values()}))
        return urls

    def call(self, user, url: str, body: dict | None = None):
        api = self.api_for(user)
        if self.op.method == "get":
            return api.get(url, self.case.query(self.world))
        query = self.case.query(self.world)
        if query:
            url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
        return getattr(api, self.op.method)(url, body or {}, format="json")

    def assert_no_secret(self, response, echoed: set[str]) -> None:
        text = response.content.decode()
        for own in sorted(echoed, key=len, reverse=True):
            text = text.replace(own, "")
        leaked = [secret for secret in self.secrets if secret in text]
        assert not leaked, f"{self.op.key} shows bob {leaked}: {response.content!r}"

    def check_anonymous(self) -> None:
        urls = self.urls() if self.case.kwargs else []
        for url, _ in urls:
            enveloped(self.call(None, url, self.case.body(self.world)), 401)

    def check_other_team(self) -> None:
        world, bob = self.world, self.world.bob
        owner = getattr(world, self.case.owner)
        for url, echoed in self.urls():
            before = database_state()
            body = self.case.body(world)
            response = self.call(bob, url, body)
            # What bob sent may come back in the message about it; nothing else may.
            echoed |= set(_strings(body)) | set(_strings(self.case.query(world)))
            assert changed_tables(before, database_state()) == [], (self.op.key, url)
            if self.case.kind == LIST:
                assert response.status_code == 200, (url, response.content[:400])
                self.assert_no_secret(response, echoed)
                mine = self.call(owner, url)
                assert mine.status_code == 200
                assert any(s in mine.content.decode() for s in self.secrets), (
                    f"{self.op.key}: the owner does not see the object either; "
                    "the absence for bob proves nothing"
                )
            elif self.case.kind in (READ, WRITE):
                enveloped(response, 404)
                self.assert_no_secret(response, echoed)
                if self.case.kind == READ:
                    mine = self.call(owner, url)
                    assert mine.status_code == 200, (url, mine.content[:400])
            else:
                assert 400 <= response.status_code < 500, (url, response.content[:400])
                enveloped(response, response.status_code)
                self.assert_no_secret(response, echoed)

    def check_server_owned(self, schema: dict) -> list[str]:
        """Each server-owned field, sent by the owner, is refused with a 400 naming it; returns
        the fields tried."""
        if self.case.owner_body is None:
            return []
        owned = server_owned_fields(schema, schema_path(self.op), self.op.method)
        owned |= set(self.case.server_owned)
        owner = getattr(self.world, self.case.owner)
        url, _ = self.urls()[0]
        for name in sorted(owned):
            before = database_state()
            body = {**self.case.owner_body(self.world), name: sample_value(name)}
            error = enveloped(self.call(owner, url, body), 400)
            assert name in error.get("fields", {}), (self.op.key, name, error)
            assert changed_tables(before, database_state()) == [], (self.op.key, name)
        return sorted(owned)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif value is not None:
        yield str(value)


def sample_value(name: str) -> Any:
    """A plausible value for a field, so that only its being server-owned can refuse it."""
    if name.endswith(("_at", "_since")):
        return "2030-01-01T00:00:00Z"
    if name in ("digest", "artefact_digest", "sha256", "dataset_sha256", "base_digest"):
        return "0" * 64
    if name.endswith(("_size", "_count", "size", "id", "attempts", "samples")):
        return 1
    return "x"
