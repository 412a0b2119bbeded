"""Admin building blocks for every app: admins that save through services, read-only admins
for history and logs, and the CSV export every list offers."""

import csv
import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import label_for_field, lookup_field
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.html import strip_tags
from django.utils.text import slugify

from registry.errors import (
    RETRY_AFTER_SECONDS,
    TRANSIENT_ERRORS,
    PermissionRefused,
    ServiceError,
    Unavailable,
)
from registry.retry import retry_transaction

logger = logging.getLogger(__name__)
R = TypeVar("R")

# What the admin says when a write met a transient fault (see `TRANSIENT_ERRORS`).
TRANSIENT_MESSAGE = (
    "The database was busy or could not be reached, so nothing was changed. "
    f"Try again in a few seconds ({RETRY_AFTER_SECONDS} s)."
)

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


@retry_transaction
def admin_write(write: Callable[[], R]) -> R:
    """Run an admin write (a save, a deletion, an action on many rows) in one transaction, all
    or nothing, repeated like a service's when the database aborts it to break a deadlock or a
    serialization conflict (`registry.retry`). Services called inside join this transaction."""
    with transaction.atomic():
        return write()


def transient_faults_reported(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wraps every admin view (`PedigreeAdminSite.admin_view`): a transient fault that outlasted
    the retries answers with `TRANSIENT_MESSAGE` instead of a server error. A form or an action
    sent (POST) comes back to its page with the message; a page that cannot be read answers 503
    with Retry-After."""

    @functools.wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except TRANSIENT_ERRORS as error:
            logger.warning("admin %s %s: transient fault: %r", request.method, request.path, error)
            if request.method == "POST":
                messages.error(request, TRANSIENT_MESSAGE)
                return HttpResponseRedirect(request.get_full_path())
            response = HttpResponse(
                TRANSIENT_MESSAGE, status=503, content_type="text/plain; charset=utf-8"
            )
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response

    return guarded


class PedigreeModelAdmin(admin.ModelAdmin):
    """Deletions and actions are all or nothing and retried after a deadlock (`admin_write`), so
    that "nothing was changed" is true when a transient fault outlasts the retries."""

    def delete_view(
        self,
        request: HttpRequest,
        object_id: str,
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        parent = super().delete_view
        return admin_write(lambda: parent(request, object_id, extra_context))

    def response_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        parent = super().response_action
        return admin_write(lambda: parent(request, queryset))


SAVED = "_pedigree_saved"


class ServiceFormAdmin(PedigreeModelAdmin):
    """An admin whose `save_model` writes through the app's services, so the admin obeys the
    API's rules and leaves the same audit. A service refusing the input shows its message on the
    form that was sent, with nothing written; only a refused permission is a 403 page. A save
    aborted by a deadlock is retried; a transient fault that outlasts the retries is shown on
    the form like a refusal."""

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        parent = super().changeform_view
        refusal: ServiceError
        try:
            return admin_write(lambda: parent(request, object_id, form_url, extra_context))
        except PermissionRefused as error:
            raise PermissionDenied(error.message) from error
        except ServiceError as error:
            refusal = error
        except TRANSIENT_ERRORS:
            refusal = Unavailable(TRANSIENT_MESSAGE)
        # The view's transaction rolled the refused save back. Validating the same POST again
        # with the refusal added brings the form back with it, as Django shows any invalid form.
        setattr(request, _REFUSAL, refusal)
        return parent(request, object_id, form_url, extra_context)

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


class ReadOnlyAdmin(PedigreeModelAdmin):
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
