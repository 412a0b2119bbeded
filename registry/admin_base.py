"""Admin building blocks for every app: admins that save through services, read-only admins
for history and logs, and the CSV export every list offers."""

import csv
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import label_for_field, lookup_field
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import strip_tags
from django.utils.text import slugify

from registry.errors import PermissionRefused, ServiceError

# Where a refused save leaves the service's error for the form shown again.
_REFUSAL = "_pedigree_admin_refusal"


# A waiver pre-filled from a violation proposes this lifetime; the officer may shorten it.
WAIVER_DEFAULT_DAYS = 30
# Every waiver's expiry is picked with the same widget, and pre-filled in its format.
EXPIRY_FORMAT = "%Y-%m-%dT%H:%M"


def expiry_widget() -> forms.DateTimeInput:
    return forms.DateTimeInput(attrs={"type": "datetime-local"}, format=EXPIRY_FORMAT)


def form_errors(form: forms.BaseForm, error: ServiceError) -> None:
    """Show a service error on the fields it names (or on the form)."""
    placed = False
    for field, field_messages in error.fields.items():
        target = field if field in form.fields else None
        for message in field_messages:
            form.add_error(target, message)
        placed = True
    if not placed:
        form.add_error(None, error.message)


SAVED = "_pedigree_saved"


class ServiceFormAdmin(admin.ModelAdmin):
    """An admin whose `save_model` writes through the app's services, so the admin obeys the
    API's rules and leaves the same audit. A service refusing the input shows its message on the
    form that was sent, with nothing written; only a refused permission is a 403 page."""

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except PermissionRefused as error:
            raise PermissionDenied(error.message) from error
        except ServiceError as error:
            # The view's transaction rolled the refused save back. Validating the same POST
            # again with the refusal added brings the form back with it, as Django shows any
            # invalid form.
            setattr(request, _REFUSAL, error)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(
        self, request: HttpRequest, obj: Model | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        form_class = super().get_form(request, obj, change, **kwargs)
        refusal: ServiceError | None = getattr(request, _REFUSAL, None)
        if refusal is None:
            return form_class
        # Named again: mypy's narrowing does not reach into the class below.
        error = refusal

        class RefusedForm(form_class):  # type: ignore[valid-type, misc]
            def clean(self) -> dict[str, Any]:
                cleaned = super().clean()
                form_errors(self, error)
                return cleaned

        return RefusedForm


class ReadOnlyAdmin(admin.ModelAdmin):
    """History and logs: listed and shown, never added, changed or deleted through the admin."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    """Related history shown on a page, never edited there."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ServiceAdmin(ServiceFormAdmin):
    """Creates through `create_object` and updates through `update_object`, each calling one
    service. Fields given at creation (`create_fields`) that the update service does not accept
    (`updatable_fields`) are read-only afterwards."""

    create_fields: tuple[str, ...] = ()
    updatable_fields: frozenset[str] = frozenset()

    def create_object(self, actor, data: dict):
        raise PermissionDenied("Create these through the API or the command-line client.")

    def update_object(self, actor, instance, changes: dict):
        raise PermissionDenied("These cannot be changed in the admin.")

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            frozen = [name for name in self.create_fields if name not in self.updatable_fields]
            readonly += [name for name in frozen if name not in readonly]
        return readonly

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            # The form already wrote its values onto `obj`: give the service the stored row, so
            # the audit's "before" is what was there.
            # Many-to-many fields are saved (and audited) by save_related.
            relations = {field.name for field in obj._meta.many_to_many}
            changes = {
                name: form.cleaned_data[name] for name in form.changed_data if name not in relations
            }
            if changes:
                stored = type(obj).objects.get(pk=obj.pk)
                # What the service answered (an object, or a proposal recorded instead: see
                # registry.admin.proposals.ProposingAdminMixin), for the response to tell.
                setattr(request, SAVED, self.update_object(request.user, stored, changes))
        else:
            data = {name: form.cleaned_data[name] for name in self.create_fields}
            obj.pk = self.create_object(request.user, data).pk


def _cell(obj: Any, name: Any, model_admin: admin.ModelAdmin) -> str:
    _, _, value = lookup_field(name, obj, model_admin)
    if value is None:
        return ""
    return strip_tags(str(value))


@admin.action(description="Export the selected rows as CSV")
def export_csv(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> Any:
    """The columns of the list, one row per selected object ("select all" exports every row
    the filters match). A constant number of queries: the list's own joins are kept."""
    columns = [name for name in model_admin.get_list_display(request) if name != "action_checkbox"]
    related = model_admin.list_select_related
    if related is True:
        queryset = queryset.select_related()
    elif related:
        queryset = queryset.select_related(*related)
    opts = model_admin.model._meta
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{slugify(opts.verbose_name_plural)}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(
        [
            "id",
            *(
                strip_tags(str(label_for_field(name, model_admin.model, model_admin)))
                for name in columns
            ),
        ]
    )
    for obj in queryset.order_by("pk"):
        writer.writerow([obj.pk, *(_cell(obj, name, model_admin) for name in columns)])
    return response
