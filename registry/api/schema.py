"""What the OpenAPI schema says beyond what drf-spectacular reads from views and serializers:
the one error envelope of `registry.api.errors`, documented once as the `Error` component and
added to every operation by a postprocessing hook (SPECTACULAR_SETTINGS), so that no view has
to repeat it and a new endpoint is documented with it from its first day."""

from typing import Any

ERROR_COMPONENT = "Error"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every API error, whatever its status, in one envelope.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "status": {
                    "type": "integer",
                    "minimum": 400,
                    "maximum": 599,
                    "description": "The response's HTTP status, repeated.",
                },
                "code": {
                    "type": "string",
                    "description": "Machine-readable: invalid, not_found, permission_denied, "
                    "not_authenticated, conflict, too_large, throttled, unavailable, …",
                },
                "message": {
                    "type": "string",
                    "description": "What was wrong and how to fix it.",
                },
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    "description": "Each invalid field (dotted path, `[i]` for list items) "
                    "with its messages; present on 400s about the request's content.",
                },
            },
            "required": ["status", "code", "message"],
        }
    },
    "required": ["error"],
}

RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer", "minimum": 0},
        "description": "Seconds to wait before trying again.",
    }
}

# Status → (what it means here, whether it applies to reads, to writes, only with path ids).
_READS, _WRITES = frozenset({"get", "head"}), frozenset({"post", "put", "patch", "delete"})
_ALL = _READS | _WRITES
ERROR_STATUSES: dict[str, tuple[str, frozenset[str], bool]] = {
    "400": ("The request is invalid: a parameter, the body or its syntax.", _ALL, False),
    "401": ("No valid token: send 'Authorization: Token <your token>'.", _ALL, False),
    "403": ("The caller may not do this.", _ALL, False),
    "404": ("No such object, or the caller may not see it.", _ALL, True),
    "409": ("The change conflicts with the object's state or a concurrent change.", _WRITES, False),
    "413": ("The request body is too large.", _WRITES, False),
    "429": ("Too many requests from this token or address; retry later.", _ALL, False),
    "503": ("A transient fault (database, broker, the Hub); nothing changed, retry.", _ALL, False),
}


def error_response(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}}
        },
    }
    if retry_after:
        response["headers"] = RETRY_AFTER
    return response


def document_errors(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: the error envelope as a component, and on every operation the
    error statuses that apply to it. A view may document an error status itself: with a body
    of its own it is left as it is, with a description alone (`OpenApiResponse(description=…)`)
    it gets the envelope."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            if method not in _ALL:
                continue
            has_ids = any(p.get("in") == "path" for p in operation.get("parameters", []))
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400 and "content" not in response:
                    response.update(error_response(response.get("description", "")))
            for status, (description, methods, needs_ids) in ERROR_STATUSES.items():
                if method in methods and (has_ids or not needs_ids):
                    responses.setdefault(
                        status,
                        error_response(description, retry_after=status in ("429", "503")),
                    )
    return result
