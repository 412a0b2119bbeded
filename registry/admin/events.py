"""Admin of webhook endpoints (written through the event services) and their deliveries."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import transaction

from registry import services
from registry.admin_base import ReadOnlyAdmin, ServiceAdmin
from registry.errors import ServiceError
from registry.models import (
    EventDelivery,
    WebhookEndpoint,
)


class WebhookEndpointForm(forms.ModelForm):
    class Meta:
        model = WebhookEndpoint
        fields = ["name", "url", "secret", "events", "active"]

    def clean_events(self) -> list[str]:
        try:
            return services.webhook_events_validate(self.cleaned_data["events"])
        except ServiceError as error:
            raise forms.ValidationError(error.message) from error


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ServiceAdmin):
    form = WebhookEndpointForm
    list_display = ["name", "url", "events", "active", "created_at"]

    create_fields = ("name", "url", "secret", "events", "active")
    updatable_fields = frozenset(services.WEBHOOK_ENDPOINT_UPDATABLE)

    def create_object(self, actor, data):
        return services.webhook_endpoint_create(actor=actor, **data)

    def update_object(self, actor, instance, changes):
        return services.webhook_endpoint_update(actor=actor, endpoint=instance, changes=changes)

    def has_delete_permission(self, request, obj=None):
        # Unlike other service-backed rows, endpoints may be deleted (through the service).
        return super(ServiceAdmin, self).has_delete_permission(request, obj)

    def delete_model(self, request, obj):
        try:
            services.webhook_endpoint_delete(actor=request.user, endpoint=obj)
        except ServiceError as error:
            raise PermissionDenied(error.message) from error

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for endpoint in queryset:
                self.delete_model(request, endpoint)


@admin.register(EventDelivery)
class EventDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "event", "endpoint", "status", "attempts", "delivered_at"]
    list_filter = ["status", "event"]
    list_select_related = ["endpoint"]
