"""Building blocks of every app's API: strict input parsing, query parameters, and versions
named in URLs, looked up only among those the caller may see."""

import copy
from typing import Any

import django_filters
from django import forms
from django.conf import settings
from django.contrib.auth.models import User
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import NotAuthenticated
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

from registry.models import ModelVersion
from registry.selectors import as_id, version_by_ref
from registry.types import Actor

# A version in a URL path: its numeric id or MODEL@VERSION (a model name holds at most one "/").
# The server decodes the path before routing, so "acme%2Fintent%401.0" routes like
# "acme/intent@1.0". Anything else is no route at all: a 404 like an unknown URL.
VERSION_REF_REGEX = (
    r"(?:[0-9]+"
    r"|[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)?@[A-Za-z0-9][A-Za-z0-9._+-]*)"
)


class VersionRefConverter:
    """`<version:pk>` in a URL pattern: the ref as text, resolved by `visible_version`."""

    regex = VERSION_REF_REGEX

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: object) -> str:
        return str(value)


class BuiltFieldsMixin(serializers.Serializer):
    """A serializer that builds its fields once per class.

    DRF's `ModelSerializer` introspects the model and builds every field afresh on each
    instantiation, which cost a version's read about a sixth of its CPU time (bench_cpu.py),
    and a plain `Serializer` deep-copies its declared fields each time. The fields depend only
    on the class (its `Meta` and declared fields), so they are built once and each instance
    gets copies: a field is bound to its serializer (parent, context), so no two instances
    share one. A field holding other fields (a nested serializer, a list of related objects)
    is copied deeply, as DRF does; any other shallowly, which is enough: binding sets
    attributes on the copy alone, and what it shares with the unbound original (choices,
    validators, messages) is only ever read.
    """

    def get_fields(self) -> dict[str, serializers.Field]:
        cls = type(self)
        built: dict[str, serializers.Field] | None = cls.__dict__.get("_built_fields")
        if built is None:
            built = super().get_fields()
            cls._built_fields = built  # type: ignore[attr-defined]
        return {name: _copy_field(field) for name, field in built.items()}


def _copy_field(field: serializers.Field) -> serializers.Field:
    nested = isinstance(field, serializers.BaseSerializer) or any(
        hasattr(field, name) for name in ("child", "child_relation")
    )
    if nested:
        return copy.deepcopy(field)
    clone = object.__new__(type(field))  # copy.copy, without its reduce protocol
    clone.__dict__.update(field.__dict__)
    return clone


class StrictFieldsMixin(BuiltFieldsMixin):
    """Refuses fields it does not know, instead of silently ignoring a typo, together with
    every other problem of the input."""

    # What each refused key is told; `{fields}` lists the writable ones.
    unknown_field_hint = "Unknown or read-only field. Writable fields: {fields}."

    def to_internal_value(self, data: Any) -> Any:
        refused: dict[str, list[str]] = {}
        if isinstance(data, dict):
            known = {name for name, field in self.fields.items() if not field.read_only}
            hint = self.unknown_field_hint.format(fields=", ".join(sorted(known)))
            refused = {name: [hint] for name in sorted(set(data) - known)}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as error:
            if refused and isinstance(error.detail, dict):
                raise serializers.ValidationError({**refused, **error.detail}) from None
            raise
        if refused:
            raise serializers.ValidationError(refused)
        return value


class StrictSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    pass


def acting_user(request: Request) -> Actor:
    """Who performs a write: the authenticated caller (writes require authentication)."""
    if not isinstance(request.user, User):
        raise NotAuthenticated
    return request.user


def parsed_query(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    """The request's query parameters, validated by `serializer_class` (400 when invalid)."""
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def visible_version(request: Request, ref: int | str) -> ModelVersion:
    """The version named `ref` (numeric id or MODEL@VERSION) if the caller may see it; 404
    otherwise, so that another team's private version is indistinguishable from none."""
    version = version_by_ref(request.user, str(ref))
    if version is None:
        raise Http404
    return version


class IdField(forms.Field):
    """A row id: ASCII digits that fit a 64-bit integer, refused as a 400 otherwise (a 23-digit
    number would overflow the database's integers, and "²" is a digit to Python but no number)."""

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values:
            return None
        number = as_id(str(value).strip())
        if number is None:
            raise forms.ValidationError(
                "Give an id: a whole number of at most 18 ASCII digits.", code="invalid"
            )
        return number


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.Filter):
    """Filters by a row id (see `IdField`)."""

    field_class = IdField


class CappedLimitOffsetPagination(LimitOffsetPagination):
    """`?limit=` is capped at `PEDIGREE_MAX_PAGE_SIZE`, so one request cannot ask for every row."""

    @property
    def max_limit(self) -> int:  # type: ignore[override]
        return settings.PEDIGREE_MAX_PAGE_SIZE
