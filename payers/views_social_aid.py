"""Social-aid (ASH) applications on the resident's file (tab « Aide sociale », served by payers and
linked from ``residents.views.TABS``): the list of the resident's applications in the section, add, edit.

Scoping: the resident comes through ``residents.selectors.resident_get`` for the section of the URL
(another section's resident is a 404) and an application through the resident's stays of that section
(404 otherwise); writes need the *facturation* role (403 for *lecture*)."""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.generic import FormView, TemplateView

from core.dates import add_months
from core.forms import attach_errors
from residents import selectors as resident_selectors
from residents.views import TABS
from structures.views_mixins import SectionMixin

from . import selectors
from .forms_social_aid import SocialAidApplicationForm
from .models import SocialAidApplication
from .services.social_aid import application_save


def tab_url(section, resident) -> str:
    return reverse("payers:resident-social-aid", kwargs={"alias": section.alias, "pk": resident.pk})


class ResidentSocialAidMixin(SectionMixin):
    """The resident of the URL, after the section and role checks; the page is a tab of its file."""

    def get_resident(self):
        if not hasattr(self, "_resident"):
            self._resident = resident_selectors.resident_get(self.request.user, section=self.section,
                                                             pk=self.kwargs["pk"])
        return self._resident

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        resident = self.get_resident()
        ctx.update(resident=resident, tabs=TABS, tab="social_aid", age=resident.age_on(timezone.localdate()),
                   back_url=tab_url(self.section, resident))
        return ctx


class ResidentSocialAidView(ResidentSocialAidMixin, TemplateView):
    template_name = "payers/resident_social_aid.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        months = settings.SOCIAL_AID_PENDING_WARNING_MONTHS
        ctx.update(applications=selectors.resident_applications(section=self.section, resident=self.get_resident()),
                   stale_before=add_months(timezone.localdate(), -months), warning_months=months)
        return ctx


class ApplicationFormView(ResidentSocialAidMixin, FormView):
    write_view = True
    template_name = "payers/social_aid_form.html"

    def get_application(self) -> SocialAidApplication:
        return SocialAidApplication(status=SocialAidApplication.Status.PENDING)

    def get_form(self, form_class=None):
        self.get_resident()  # 404 before the form is built
        return SocialAidApplicationForm(**self.get_form_kwargs(), section=self.section, resident=self.get_resident())

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["instance"] = self.get_application()
        return kwargs

    def form_valid(self, form):
        try:
            application_save(application=form.instance, user=self.request.user)
        except ValidationError as exc:
            attach_errors(exc, form)
            return self.form_invalid(form)
        messages.success(self.request, _("Demande d'aide sociale enregistrée."))
        return redirect(tab_url(self.section, self.get_resident()))


class ApplicationCreateView(ApplicationFormView):
    def get_initial(self):
        stay = self.get_resident().stays.filter(section=self.section).order_by("-entry_date").first()
        departement = self.get_resident().domicile_secours or self.section.establishment.departement
        payer = (selectors.payer_list(section=self.section).filter(kind="departement", departement=departement)
                 .first())
        return {"stay": stay, "payer": payer, "filed_on": timezone.localdate()}

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["title"] = _("Nouvelle demande d'aide sociale")
        return ctx


class ApplicationUpdateView(ApplicationFormView):
    def get_application(self) -> SocialAidApplication:
        if not hasattr(self, "_application"):
            self._application = selectors.application_get(section=self.section, resident=self.get_resident(),
                                                          pk=self.kwargs["application_pk"])
        return self._application

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["title"] = _("Demande d'aide sociale déposée le %(day)s") % {
            "day": self.get_application().filed_on.strftime("%d/%m/%Y")}
        ctx["application"] = self.get_application()
        return ctx
