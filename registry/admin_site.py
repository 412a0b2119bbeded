from django.contrib import admin

from registry.dashboard import dashboard_context


class PedigreeAdminSite(admin.AdminSite):
    site_header = "Pedigree — model registry and governance"
    site_title = "Pedigree"
    index_title = "Compliance dashboard"
    index_template = "admin/pedigree_index.html"

    def index(self, request, extra_context=None):
        return super().index(request, {**dashboard_context(request), **(extra_context or {})})
