"""Building blocks of every app's API: strict input parsing, query parameters, and versions
looked up only among those the caller may see."""

from typing import Any

from django.contrib.auth.models import User
from django.http import Http404
from rest_framework import serializers
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request

from registry.models import ModelVersion
from registry.selectors import versions_visible_to
from registry.types import Actor


class StrictFieldsMixin(serializers.Serializer):
    """Refuses fields it does not know, instead of silently ignoring a typo."""

    # What each refused key is told; `{fields}` lists the writable ones.
    unknown_field_hint = "Unknown or read-only field. Writable fields: {fields}."

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            known = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(data) - known)
            if unknown:
                hint = self.unknown_field_hint.format(fields=", ".join(sorted(known)))
                raise serializers.ValidationError({name: [hint] for name in unknown})
        return super().to_internal_value(data)


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


def visible_version(request: Request, pk: int) -> ModelVersion:
    """The version `pk` if the caller may see it; 404 otherwise, so that another team's private
    version is indistinguishable from none."""
    version = versions_visible_to(request.user).filter(pk=pk).first()
    if version is None:
        raise Http404
    return version
