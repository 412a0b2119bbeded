from django.contrib import admin

from registry.dashboard import dashboard_context


class PedigreeAdminSite(admin.AdminSite):
    site_header = "Pedigree — model registry and governance"
    site_title = "Pedigree"
    index_title = "Compliance dashboard"
    index_template = "admin/pedigree_index.html"

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)
        # Every list can be taken away as CSV.
        from registry.admin_base import export_csv

        self.add_action(export_csv, "export_csv")

    def admin_view(self, view, cacheable=False):
        # Every admin page, the apps' own included, says "nothing was changed, try again" for a
        # transient fault (a deadlock past its retries, the database unreachable), never 500.
        from registry.admin_base import transient_faults_reported

        return transient_faults_reported(super().admin_view(view, cacheable))

    def index(self, request, extra_context=None):
        return super().index(request, {**dashboard_context(request), **(extra_context or {})})
