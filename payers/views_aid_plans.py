"""Aid plans (managers): the « Plans d'aide » tab of the payer file, a payer's default values per product
(tab « Paramétrage »), and the plan pages reached from the payer file or from the stay's billing screen.

Scoping: the section of the URL (404 when not granted; plans are those of the section's stays, another
section's plan is a 404); every write needs the section's *responsable* role (403 otherwise)."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import FormView, TemplateView

from core.forms import attach_errors

from .forms_aid_plans import AidPlanDefaultForm, AidPlanForm, AidPlanStartForm
from .models import AidPlan, AidPlanDefault
from .services import aid_plans as services
from .views import ManagerMixin, PayerFormView, PayerMixin, _LoadPayer, payer_url


def section_aid_plans(section):
    return (AidPlan.objects.filter(stay__section=section)
            .select_related("stay__resident", "payer", "group", "product", "validated_by")
            .order_by("stay__resident__last_name", "stay__resident__first_name", "product__code", "-valid_from"))


def aid_plan_get(section, pk) -> AidPlan:
    try:
        return section_aid_plans(section).get(pk=pk)
    except AidPlan.DoesNotExist as exc:
        raise Http404("Plan d'aide inconnu dans cette section.") from exc


def back_url(section, plan_or_none, request, *, stay=None, payer=None) -> str:
    """Back to the payer file's tab when coming from it (``?retour=payeur``), else to the stay's billing."""
    stay = stay or plan_or_none.stay
    payer = payer or plan_or_none.payer
    if request.GET.get("retour") == "payeur" or request.POST.get("retour") == "payeur":
        return reverse("payers:aid-plans", kwargs={"alias": section.alias, "pk": payer.pk})
    return reverse("billing:stay-billing", kwargs={"alias": section.alias, "stay_pk": stay.pk})


class AidPlanTabView(PayerMixin, _LoadPayer, TemplateView):
    """Tab « Plans d'aide » of the payer file: the payer's plans for the section's beneficiaries."""

    template_name = "payers/aid_plans.html"
    tab = "aid_plans"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.update(plans=section_aid_plans(self.section).filter(payer=self.payer), retour="payeur")
        return ctx


class AidPlanCreateView(ManagerMixin, FormView):
    """Step 1 chooses beneficiary, payer and product (GET, each scoped); step 2 is the plan pre-filled with
    the payer's default values for the product."""

    write_view = True
    template_name = "payers/aid_plan_form.html"

    def dispatch(self, request, *args, **kwargs):
        self.choice = None
        return super().dispatch(request, *args, **kwargs)

    def get_start_form(self):
        """Bound on POST, and on GET once the three are given (a link with only ``?stay=`` or ``?payer=``
        pre-selects it without showing « champ obligatoire » on the others)."""
        keys = ("stay", "payer", "product")
        data = self.request.POST if self.request.method == "POST" else self.request.GET
        bound = self.request.method == "POST" or all(data.get(k) for k in keys)
        return AidPlanStartForm(data if bound else None, initial={k: self.request.GET.get(k) for k in keys},
                                section=self.section)

    def get(self, request, *args, **kwargs):
        start = self.get_start_form()
        if not start.is_bound or not start.is_valid():
            return self.render_to_response(self.get_context_data(start_form=start, step=1, form=None))
        self.choice = start.cleaned_data
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        start = self.get_start_form()
        if not start.is_valid():
            return self.render_to_response(self.get_context_data(start_form=start, step=1, form=None))
        self.choice = start.cleaned_data
        return super().post(request, *args, **kwargs)

    def get_form(self, form_class=None):
        return AidPlanForm(**self.get_form_kwargs(), payer=self.choice["payer"])

    def get_initial(self):
        stay = self.choice["stay"]
        initial = services.aid_plan_initial(payer=self.choice["payer"], product=self.choice["product"])
        initial["valid_from"] = stay.entry_date
        return initial

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["instance"] = AidPlan(**self.choice)
        return kwargs

    def form_valid(self, form):
        try:
            plan = services.aid_plan_save(plan=form.instance)
        except ValidationError as exc:
            attach_errors(exc, form)
            return self.form_invalid(form)
        messages.success(self.request, _("Plan d'aide enregistré (saisi) : validez-le pour qu'il soit appliqué."))
        return redirect(reverse("payers:aid-plan-edit", kwargs={"alias": self.section.alias, "plan_pk": plan.pk})
                        + ("?retour=payeur" if self.request.POST.get("retour") == "payeur" else ""))

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        retour = self.request.GET.get("retour") or self.request.POST.get("retour") or ""
        ctx.update(title=_("Nouveau plan d'aide"), choice=self.choice, retour=retour, step=kwargs.get("step", 2))
        if self.choice:
            ctx["has_defaults"] = AidPlanDefault.objects.filter(payer=self.choice["payer"],
                                                                product=self.choice["product"]).exists()
            ctx["back_url"] = back_url(self.section, None, self.request, stay=self.choice["stay"],
                                       payer=self.choice["payer"])
        return ctx


class AidPlanEditView(ManagerMixin, FormView):
    """A plan: its values (editable; a change of a validated plan brings it back to *saisi*) and « Valider »."""

    write_view = False  # readers see the plan; saving needs the manager role (checked on POST)
    template_name = "payers/aid_plan_form.html"

    def dispatch(self, request, *args, **kwargs):
        self.plan = None
        return super().dispatch(request, *args, **kwargs)

    def get_plan(self):
        if self.plan is None:
            self.plan = aid_plan_get(self.section, self.kwargs["plan_pk"])
        return self.plan

    def get_form(self, form_class=None):
        return AidPlanForm(**self.get_form_kwargs(), payer=self.get_plan().payer)

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["instance"] = self.get_plan()
        return kwargs

    def form_valid(self, form):
        was_validated = AidPlan.objects.filter(pk=form.instance.pk, status=AidPlan.Status.VALIDATED).exists()
        try:
            services.aid_plan_save(plan=form.instance)
        except ValidationError as exc:
            attach_errors(exc, form)
            return self.form_invalid(form)
        messages.success(self.request, _("Plan d'aide modifié ; il est de nouveau « saisi » : validez-le pour qu'il "
                                         "soit appliqué.") if was_validated else _("Plan d'aide modifié."))
        return redirect(self.request.get_full_path())

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        plan = self.get_plan()
        retour = self.request.GET.get("retour", "")
        ctx.update(title=_("Plan d'aide"), plan=plan, plans=[plan], retour=retour, step=2,
                   choice={"stay": plan.stay, "payer": plan.payer, "product": plan.product},
                   back_url=back_url(self.section, plan, self.request))
        return ctx


class AidPlanValidateView(ManagerMixin, View):
    def post(self, request, *args, **kwargs):
        plan = aid_plan_get(self.section, kwargs["plan_pk"])
        try:
            services.aid_plan_validate(plan=plan, user=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Plan d'aide validé : la génération l'applique désormais."))
        return redirect(back_url(self.section, plan, request))


class AidPlanDefaultMixin:
    form_class = AidPlanDefaultForm
    tab = "settings"

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["establishment"] = self.section.establishment
        return kwargs

    def perform(self, form):
        services.aid_plan_default_save(default=form.instance, establishment=self.section.establishment)


class AidPlanDefaultCreateView(AidPlanDefaultMixin, PayerFormView):
    title = gettext_lazy("Valeurs par défaut d'un plan d'aide")
    success_message = gettext_lazy("Valeurs par défaut enregistrées.")

    def get_instance(self):
        return AidPlanDefault(payer=self.payer)


class AidPlanDefaultUpdateView(AidPlanDefaultMixin, PayerFormView):
    title = gettext_lazy("Valeurs par défaut d'un plan d'aide")

    def load_objects(self):
        try:
            self.default = self.payer.aid_plan_defaults.get(pk=self.kwargs["default_pk"],
                                                            product__establishment=self.section.establishment)
        except AidPlanDefault.DoesNotExist as exc:
            raise Http404("Valeurs par défaut inconnues.") from exc

    def get_instance(self):
        return self.default


class AidPlanDefaultDeleteView(PayerMixin, _LoadPayer, View):
    write_view = True

    def post(self, request, *args, **kwargs):
        deleted, _rows = self.payer.aid_plan_defaults.filter(
            pk=kwargs["default_pk"], product__establishment=self.section.establishment).delete()
        if not deleted:
            raise Http404("Valeurs par défaut inconnues.")
        messages.success(request, _("Valeurs par défaut supprimées (les plans déjà saisis sont inchangés)."))
        return redirect(payer_url(self.section, self.payer, "settings"))
