"""View helpers that apply the section scoping of ``structures.access`` (used by every app)."""
from django.contrib.auth.mixins import LoginRequiredMixin

from . import access
from .models import SectionAccess


class SectionMixin(LoginRequiredMixin):
    """Resolves ``<alias>`` from the URL to a section the user may read (else 404).

    ``required_role`` is checked for unsafe methods (POST…) and ``write_view = True`` views
    check it for GET too (forms). A *lecture* user gets 403 on any change.
    """

    required_role = SectionAccess.Role.CLERK
    write_view = False
    # Association settings and SMTP account: only its administrators (403 for anyone else).
    organisation_admin_required = False

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.section = access.section_for_user_or_404(request.user, kwargs["alias"])
        self.role = access.role_in(request.user, self.section)
        if request.session.get("section_alias") != self.section.alias:  # no session write on every page
            request.session["section_alias"] = self.section.alias
        if self.write_view or request.method not in ("GET", "HEAD", "OPTIONS"):
            access.require_role(request.user, self.section, self.required_role)
        if self.organisation_admin_required:
            access.require_organisation_admin(request.user, self.section.establishment.organisation)
        return super().dispatch(request, *args, **kwargs)

    @property
    def can_write(self) -> bool:
        return access.has_role(self.request.user, self.section, access.Role.CLERK)

    @property
    def can_manage(self) -> bool:
        return access.has_role(self.request.user, self.section, access.Role.MANAGER)

    @property
    def can_admin_organisation(self) -> bool:
        return access.is_organisation_admin(self.request.user, self.section.establishment.organisation)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.update(section=self.section, role=self.role, can_write=self.can_write, can_manage=self.can_manage,
                   can_admin_organisation=self.can_admin_organisation)
        return ctx
