"""Rappel de tarifs: choose a product → detected old/new prices and periods → preview per debtor
(payants and/or aide sociale) → generate rappel drafts → list them and issue. For habilitated
hébergement, a warning and the catch-up tariff (R314-35 CASF) as a suggested tariff row."""
from datetime import timedelta

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Max
from django.http import Http404
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView

from core.money import format_euros
from structures.access import Role
from structures.views_mixins import SectionMixin

from .. import selectors
from ..forms import IssueForm
from ..models import Invoice, InvoiceLine, Product
from ..services import pdf
from ..services import rappel as rappel_services
from ..services.issuing import invoices_issue


class RappelChoiceForm(forms.Form):
    product = forms.ModelChoiceField(label=gettext_lazy("produit"), queryset=Product.objects.none(),
                                     empty_label=gettext_lazy("— choisir —"))
    payants = forms.BooleanField(label=gettext_lazy("résidents payants (résident ou proche payeur)"), required=False)
    aide_sociale = forms.BooleanField(label=gettext_lazy("aide sociale (factures aux payeurs : département, caisses…)"),
                                      required=False)

    def __init__(self, *args, section, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["product"].queryset = _products(section)


class CatchupForm(forms.Form):
    product = forms.IntegerField(widget=forms.HiddenInput)
    old = forms.DecimalField(label=gettext_lazy("ancien tarif (appliqué depuis le 1er janvier)"), max_digits=10,
                             decimal_places=2, min_value=0)
    new = forms.DecimalField(label=gettext_lazy("nouveau tarif (arrêté)"), max_digits=10, decimal_places=2,
                             min_value=0)
    effect_date = forms.DateField(label=gettext_lazy("date d'effet"),
                                  widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "catchup_%s")  # the choice form on the same page has id_product
        super().__init__(*args, **kwargs)
    act_reference = forms.CharField(label=gettext_lazy("référence de l'arrêté"), required=False, max_length=120)


def _products(section):
    return Product.objects.filter(establishment=section.establishment).order_by("code")


def _product_or_404(section, pk):
    try:
        return _products(section).get(pk=pk)
    except (Product.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("Produit introuvable.") from exc


def _flags(data) -> tuple[bool, bool]:
    return bool(data.get("payants")), bool(data.get("aide_sociale"))


def _rappel_url(section, product=None, **params) -> str:
    url = reverse("billing:rappel", kwargs={"alias": section.alias})
    query = {"product": product.pk} if product else {}
    query.update(params)
    return f"{url}?{urlencode(query)}" if query else url


def _catchup_initial(section, product, detection) -> dict:
    """Old/new from the last two tariff rows; effect date = the day after the last issued day."""
    rows = [row["tariff"] for row in detection.history]  # latest first
    initial = {"product": product.pk, "effect_date": timezone.localdate()}
    if rows:
        initial["new"] = rows[0].price
    if len(rows) > 1:
        initial["old"] = rows[1].price
    last = (InvoiceLine.objects.filter(invoice__section=section, invoice__status=Invoice.Status.ISSUED,
                                       invoice__kind=Invoice.Kind.INVOICE, product=product)
            .aggregate(last=Max("date_to"))["last"])
    if last:
        initial["effect_date"] = last + timedelta(days=1)
    return initial


class RappelView(SectionMixin, TemplateView):
    """Reader may look at the detection and the preview; actions are separate POST views."""

    template_name = "billing/rappel.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        data = self.request.GET
        submitted = "product" in data
        initial = {"payants": True, "aide_sociale": True}
        form = RappelChoiceForm(data if submitted else None, initial=initial, section=self.section)
        ctx.update(form=form, product=None, detection=None, preview=None)
        if not submitted or not form.is_valid():
            return ctx
        product = form.cleaned_data["product"]
        include_payants, include_social_aid = _flags(data) if "apercu" in data else (True, True)
        if "apercu" not in data:
            form = RappelChoiceForm(initial={"product": product.pk, **initial}, section=self.section)
        detection = rappel_services.rappel_detect(section=self.section, product=product)
        ctx.update(form=form, product=product, detection=detection, include_payants=include_payants,
                   include_social_aid=include_social_aid,
                   drafts=rappel_services.rappel_drafts(section=self.section, product=product).count())
        if "apercu" in data:
            if not (include_payants or include_social_aid):
                ctx["flag_error"] = _("Cochez « payants » et/ou « aide sociale ».")
            else:
                ctx["preview"] = rappel_services.rappel_preview(
                    section=self.section, product=product, include_payants=include_payants,
                    include_social_aid=include_social_aid, detection=detection)
        if detection.habilitated_warning:
            catchup_form = CatchupForm(initial=_catchup_initial(self.section, product, detection))
            suggestion = None
            init = catchup_form.initial
            if init.get("old") is not None and init.get("new") is not None:
                elapsed, remaining = rappel_services.catchup_days(init["effect_date"])
                suggestion = {"price": rappel_services.catchup_tariff(old=init["old"], new=init["new"],
                                                                      effect_date=init["effect_date"]),
                              "elapsed": elapsed, "remaining": remaining, **init}
            ctx.update(catchup_form=catchup_form, catchup=suggestion)
        return ctx


class RappelGenerateView(SectionMixin, View):
    """POST: replace the product's rappel drafts by fresh ones, then list them."""

    write_view = True
    required_role = Role.CLERK

    def post(self, request, *args, **kwargs):
        product = _product_or_404(self.section, request.POST.get("product"))
        include_payants, include_social_aid = _flags(request.POST)
        try:
            result = rappel_services.rappel_generate(section=self.section, product=product,
                                                     include_payants=include_payants,
                                                     include_social_aid=include_social_aid, user=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect(_rappel_url(self.section, product, apercu=1))
        invoices = result["invoices"]
        if invoices:
            messages.success(request, _("%(n)s facture(s) de rappel brouillon créée(s), total %(total)s.") % {
                "n": len(invoices), "total": format_euros(result["total"])})
        else:
            messages.info(request, _("Aucune facture de rappel à créer."))
        if result["replaced_drafts"]:
            messages.info(request, _("%(n)s brouillon(s) de rappel précédent(s) remplacé(s).") % {
                "n": result["replaced_drafts"]})
        for refused in result["refused"]:
            messages.warning(request, _("%(debtor)s : total %(total)s négatif, aucune facture de rappel créée — "
                                        "établissez un avoir.") % {"debtor": refused["debtor"],
                                                                   "total": format_euros(refused["total"])})
        url = reverse("billing:rappel-invoices", kwargs={"alias": self.section.alias})
        if invoices:
            url += "?" + urlencode({"ids": ",".join(str(i.pk) for i in invoices)})
        return redirect(url)


class RappelInvoicesView(SectionMixin, TemplateView):
    """Rappel invoices of the section (the ones just created first when ``?ids=`` is given)."""

    template_name = "billing/rappel_invoices.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        invoices = selectors.invoices_of(section=self.section).filter(kind=Invoice.Kind.RAPPEL)
        ids = [int(x) for x in self.request.GET.get("ids", "").split(",") if x.strip().isdigit()]
        if ids:
            invoices = invoices.filter(pk__in=ids)
        invoices = list(invoices.order_by("status", "debtor_kind", "resident__sort_key", "payer__code", "-pk"))
        for invoice in invoices:
            invoice.debtor_display = selectors.debtor_label(invoice)
        ctx.update(invoices=invoices, filtered=bool(ids),
                   drafts=[i for i in invoices if i.status == Invoice.Status.DRAFT],
                   issue_form=IssueForm(initial={"issue_date": timezone.localdate()}))
        return ctx


class RappelIssueView(SectionMixin, View):
    """POST: issue the chosen rappel drafts (numbers continue the invoice series)."""

    write_view = True
    required_role = Role.CLERK

    def post(self, request, *args, **kwargs):
        form = IssueForm(request.POST)
        ids = [int(x) for x in request.POST.getlist("invoice") if x.isdigit()]
        ids = list(Invoice.objects.filter(section=self.section, kind=Invoice.Kind.RAPPEL, status=Invoice.Status.DRAFT,
                                          pk__in=ids).values_list("pk", flat=True))
        back = reverse("billing:rappel-invoices", kwargs={"alias": self.section.alias})
        if not form.is_valid():
            messages.error(request, _("Date d'émission invalide."))
            return redirect(back)
        if not ids:
            messages.error(request, _("Choisissez au moins une facture de rappel brouillon."))
            return redirect(back)
        try:
            issued = invoices_issue(invoice_ids=ids, user=request.user, issue_date=form.cleaned_data["issue_date"])
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect(back)
        messages.success(request, _("%(n)s facture(s) de rappel émise(s).") % {"n": len(issued)})
        if issued:
            pdf.invoices_render_pdfs_start(invoice_ids=[i.pk for i in issued], section=self.section, user=request.user)
        return redirect(back + "?" + urlencode({"ids": ",".join(str(i.pk) for i in issued)}))


class RappelCatchupView(SectionMixin, View):
    """POST (manager): add the catch-up tariff as a dated tariff row of the product."""

    write_view = True
    required_role = Role.MANAGER

    def post(self, request, *args, **kwargs):
        form = CatchupForm(request.POST)
        if not form.is_valid():
            product = _product_or_404(self.section, request.POST.get("product"))
            messages.error(request, _("Tarif de rattrapage : données invalides (%(errors)s).") % {
                "errors": "; ".join(e for errors in form.errors.values() for e in errors)})
            return redirect(_rappel_url(self.section, product))
        data = form.cleaned_data
        product = _product_or_404(self.section, data["product"])
        try:
            tariff = rappel_services.catchup_tariff_create(product=product, old=data["old"], new=data["new"],
                                                           effect_date=data["effect_date"],
                                                           act_reference=data["act_reference"])
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect(_rappel_url(self.section, product))
        messages.success(request, _("Tarif de rattrapage %(price)s enregistré à partir du %(day)s.") % {
            "price": format_euros(tariff.price), "day": tariff.valid_from.strftime("%d/%m/%Y")})
        return redirect("billing:product-detail", alias=self.section.alias, pk=product.pk)


urlpatterns = [
    path("rappels/", RappelView.as_view(), name="rappel"),
    path("rappels/generer/", RappelGenerateView.as_view(), name="rappel-generate"),
    path("rappels/factures/", RappelInvoicesView.as_view(), name="rappel-invoices"),
    path("rappels/factures/emettre/", RappelIssueView.as_view(), name="rappel-issue"),
    path("rappels/rattrapage/", RappelCatchupView.as_view(), name="rappel-catchup"),
]
