"""Catalogue screens: products and dated tariffs, packages, calendars (generate years, edit a month)."""
import calendar as pycal
from datetime import date

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.utils import timezone
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView

from core.forms import attach_errors
from structures import access
from structures.access import Role
from structures.views_mixins import SectionMixin

from ..models import Calendar, CalendarDay, Package, Product
from ..services import calendars as calendar_services
from ..services import catalog as catalog_services
from ..services.periods import MONTHS


class TariffForm(forms.Form):
    valid_from = forms.DateField(label=gettext_lazy("à partir du"), widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}))
    price = forms.DecimalField(label=gettext_lazy("prix unitaire (€)"), max_digits=10, decimal_places=2, min_value=0)
    act_reference = forms.CharField(label=gettext_lazy("référence de l'acte"), required=False, max_length=200)


class CalendarCreateForm(forms.Form):
    code = forms.CharField(label=gettext_lazy("code"), max_length=20)
    label = forms.CharField(label=gettext_lazy("libellé"), max_length=120)
    mode = forms.ChoiceField(label=gettext_lazy("mode"), choices=Calendar.Mode.choices)


class GenerateYearsForm(forms.Form):
    years = forms.CharField(label=gettext_lazy("années"), help_text=gettext_lazy("Par exemple : 2027 ou 2027, 2028"))

    def clean_years(self):
        raw = self.cleaned_data["years"].replace(";", ",").replace(" ", ",")
        try:
            years = sorted({int(x) for x in raw.split(",") if x})
        except ValueError as exc:
            raise forms.ValidationError(_("Années invalides : « %(v)s ».") % {"v": self.cleaned_data["years"]}) from exc
        if not years or any(y < 2000 or y > 2100 for y in years):
            raise forms.ValidationError(_("Années invalides : « %(v)s ».") % {"v": self.cleaned_data["years"]})
        return years


def _products_of(section):
    return Product.objects.filter(establishment=section.establishment).prefetch_related("tariffs")


class CatalogView(SectionMixin, TemplateView):
    template_name = "billing/catalog.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        products = list(_products_of(self.section))
        today = timezone.localdate()
        for p in products:
            current = [t for t in p.tariffs.all() if t.valid_from <= today]
            p.current_tariff = max(current, key=lambda t: t.valid_from) if current else None
        ctx.update(products=products,
                   packages=Package.objects.filter(section=self.section).prefetch_related("items__product"),
                   calendars=self.section.calendars.all())
        return ctx


class ProductDetailView(SectionMixin, TemplateView):
    template_name = "billing/product_detail.html"

    def get_product(self):
        try:
            return _products_of(self.section).get(pk=self.kwargs["pk"])
        except Product.DoesNotExist as exc:
            raise Http404 from exc

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        product = self.get_product()
        ctx.update(product=product, history=catalog_services.tariff_history(product),
                   form=kwargs.get("form") or TariffForm(),
                   can_edit_tariffs=self.can_manage)
        return ctx

    def post(self, request, *args, **kwargs):
        access.require_role(request.user, self.section, Role.MANAGER)
        product = self.get_product()
        form = TariffForm(request.POST)
        if form.is_valid():
            try:
                catalog_services.tariff_add(product=product, **form.cleaned_data)
            except ValidationError as exc:
                attach_errors(exc, form)
            else:
                messages.success(request, _("Tarif enregistré. Pour les périodes déjà émises, utilisez le rappel "
                                            "de tarifs."))
                return redirect(request.path)
        return self.render_to_response(self.get_context_data(form=form))


class CalendarListView(SectionMixin, TemplateView):
    template_name = "billing/calendar_list.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.update(calendars=self.section.calendars.all(), form=kwargs.get("form") or CalendarCreateForm())
        return ctx

    def post(self, request, *args, **kwargs):
        access.require_role(request.user, self.section, Role.MANAGER)
        form = CalendarCreateForm(request.POST)
        if form.is_valid():
            try:
                calendar = catalog_services.calendar_create(section=self.section, **form.cleaned_data)
            except ValidationError as exc:
                form.add_error(None, exc.messages)
            else:
                return redirect("billing:calendar-detail", alias=self.section.alias, pk=calendar.pk)
        return self.render_to_response(self.get_context_data(form=form))


class CalendarDetailView(SectionMixin, TemplateView):
    """A month of the calendar day by day, and the "generate a year" form that extends it."""

    template_name = "billing/calendar_detail.html"

    def get_calendar(self):
        try:
            return self.section.calendars.get(pk=self.kwargs["pk"])
        except Calendar.DoesNotExist as exc:
            raise Http404 from exc

    def _month(self):
        try:
            year, month = (int(x) for x in self.request.GET.get("mois", "").split("-"))
            date(year, month, 1)
        except ValueError:
            today = timezone.localdate()
            year, month = today.year, today.month
        return year, month

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        calendar = self.get_calendar()
        year, month = self._month()
        days = {d.day: d for d in CalendarDay.objects.filter(calendar=calendar, day__year=year, day__month=month)}
        weeks = []
        for week in pycal.Calendar().monthdatescalendar(year, month):
            weeks.append([(d, days.get(d)) if d.month == month else (d, None) for d in week])
        years = sorted({d.year for d in CalendarDay.objects.filter(calendar=calendar).dates("day", "year")})
        prev_month = date(year, month, 1).replace(day=1)
        prev = (prev_month.year - (prev_month.month == 1), 12 if prev_month.month == 1 else prev_month.month - 1)
        nxt = (year + (month == 12), 1 if month == 12 else month + 1)
        ctx.update(calendar=calendar, weeks=weeks, year=year, month=month, month_name=MONTHS[month - 1],
                   years=years, generate_form=kwargs.get("generate_form") or GenerateYearsForm(
                       initial={"years": (max(years) + 1) if years else timezone.localdate().year}),
                   prev=f"{prev[0]}-{prev[1]:02d}", next=f"{nxt[0]}-{nxt[1]:02d}",
                   states=CalendarDay.State.choices, missing_month=not days)
        return ctx

    def post(self, request, *args, **kwargs):
        calendar = self.get_calendar()
        # A calendar may serve several sections: changing it needs the right on each of them.
        for other in calendar.sections.all():
            access.require_role(request.user, other, Role.CLERK)
        if request.POST.get("action") == "generate":
            access.require_role(request.user, self.section, Role.MANAGER)
            form = GenerateYearsForm(request.POST)
            if not form.is_valid():
                return self.render_to_response(self.get_context_data(generate_form=form))
            written = calendar_services.calendar_generate(calendar=calendar, years=form.cleaned_data["years"])
            messages.success(request, _("%(n)s jour(s) ajouté(s) au calendrier %(code)s.") % {
                "n": written, "code": calendar.code})
            return redirect(request.path)
        # Edit one day (clerks may open/close days of their section's calendar).
        try:
            day = date.fromisoformat(request.POST.get("day", ""))
        except ValueError:
            messages.error(request, _("Jour invalide : « %(v)s ».") % {"v": request.POST.get("day", "")})
            return redirect(request.path)
        state = request.POST.get("state")
        if state not in CalendarDay.State.values:
            messages.error(request, _("État invalide : « %(v)s ».") % {"v": state})
            return redirect(request.path)
        try:
            calendar_services.calendar_day_set(calendar=calendar, day=day, state=state)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect(f"{request.path}?mois={day.year}-{day.month:02d}")


urlpatterns = [
    path("catalogue/", CatalogView.as_view(), name="catalog"),
    path("catalogue/produits/<int:pk>/", ProductDetailView.as_view(), name="product-detail"),
    path("calendriers/", CalendarListView.as_view(), name="calendars"),
    path("calendriers/<int:pk>/", CalendarDetailView.as_view(), name="calendar-detail"),
]
