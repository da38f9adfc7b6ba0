from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin_helpers import AuditHistoryAdminMixin, euros, readable_json
from structures.admin_scoping import SectionScopedAdmin, SectionScopedTabularInline

from .models import (AccountingEntry, AccountingExport, AccountMap, BillingPeriod, Calendar, CalendarDay,
                     DepartementParameter, Invoice, InvoiceLine, NationalParameter, NumberSequence, Package,
                     PackageItem, Payment, PaymentAllocation, Product, RevenueAccount, StayPackage, Tariff)


class FrozenWhenUsedAdminMixin:
    """Rows used by issued invoices (tariffs, calendar days, parameters) are read-only, for superusers
    too: a change is a new dated row. The models refuse it as well."""

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or not obj.is_used())

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or not obj.is_used())

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


class TariffInline(SectionScopedTabularInline):
    model = Tariff
    extra = 0

    @staticmethod
    def _has_used(product) -> bool:
        return product is not None and any(t.is_used() for t in product.tariffs.all())

    def get_readonly_fields(self, request, obj=None):
        # An inline can't lock single rows: once a tariff of the product is used by issued invoices,
        # the existing rows are read-only here (a new price is a new dated row).
        if self._has_used(obj):
            return ["valid_from", "price", "act_reference"]
        return super().get_readonly_fields(request, obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and not self._has_used(obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not self._has_used(obj)


@admin.register(Product)
class ProductAdmin(SectionScopedAdmin):
    section_lookup = "establishment__sections"
    list_display = ["code", "label", "kind", "unit", "establishment", "accounting_account", "vat_rate"]
    list_filter = ["establishment", "kind", "unit"]
    search_fields = ["code", "label"]
    inlines = [TariffInline]


@admin.register(Tariff)
class TariffAdmin(FrozenWhenUsedAdminMixin, SectionScopedAdmin):
    section_lookup = "product__establishment__sections"
    list_display = ["product", "establishment", "valid_from", euros("price", _("prix unitaire")), "act_reference"]
    list_filter = ["product__establishment", "product__code"]
    list_select_related = ["product__establishment"]
    date_hierarchy = "valid_from"

    @admin.display(description=_("établissement"), ordering="product__establishment__name")
    def establishment(self, obj):
        return obj.product.establishment


class PackageItemInline(SectionScopedTabularInline):
    model = PackageItem
    extra = 0


@admin.register(Package)
class PackageAdmin(SectionScopedAdmin):
    list_display = ["code", "label", "section", "dependency_by_gir"]
    list_filter = ["section"]
    search_fields = ["code", "label"]
    inlines = [PackageItemInline]


@admin.register(StayPackage)
class StayPackageAdmin(SectionScopedAdmin):
    section_lookup = "stay__section"
    list_display = ["stay", "package", "valid_from"]
    list_filter = ["package__section"]
    raw_id_fields = ["stay"]


@admin.register(Calendar)
class CalendarAdmin(SectionScopedAdmin):
    section_lookup = "sections"
    list_display = ["code", "label", "mode", "establishment"]
    filter_horizontal = ["sections"]


@admin.register(CalendarDay)
class CalendarDayAdmin(FrozenWhenUsedAdminMixin, SectionScopedAdmin):
    section_lookup = "calendar__sections"
    list_display = ["calendar", "day", "state", "note"]
    list_filter = ["calendar", "state"]
    date_hierarchy = "day"


@admin.register(NationalParameter)
class NationalParameterAdmin(FrozenWhenUsedAdminMixin, AuditHistoryAdminMixin, admin.ModelAdmin):
    list_display = ["kind", "valid_from", euros("amount", _("montant")), "source"]
    list_filter = ["kind"]


@admin.register(DepartementParameter)
class DepartementParameterAdmin(FrozenWhenUsedAdminMixin, AuditHistoryAdminMixin, admin.ModelAdmin):
    list_display = ["departement", "valid_from", euros("convenience_reduction", _("réduction pour convenance")),
                    "convenience_cap_days", "talon_on_first_day",
                    euros("death_variable_charges", _("charges variables après décès"))]
    list_filter = ["departement"]


@admin.register(BillingPeriod)
class BillingPeriodAdmin(SectionScopedAdmin):
    list_display = ["label", "section", "start", "end", "status", "generated_at"]
    list_filter = ["section", "status"]


class InvoiceLineInline(SectionScopedTabularInline):
    """Lines are written by generation, rappels and credit notes only: read-only here."""

    model = InvoiceLine
    extra = 0
    fields = ["label", "date_from", "date_to", "quantity", "unit_price_euros", "amount_euros"]
    readonly_fields = fields
    unit_price_euros = euros("unit_price", _("prix unitaire"))
    amount_euros = euros("amount", _("montant"))

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Invoice)
class InvoiceAdmin(SectionScopedAdmin):
    """Invoices are created by generation, numbered and issued by *Émettre*, cancelled by a credit
    note: the admin never adds one nor sets a number, a status or a total (superusers included)."""

    list_display = ["__str__", "kind", "status", "debtor_kind", "resident", "payer", euros("total", _("total")),
                    "issue_date", "section"]
    list_filter = ["section", "kind", "status", "debtor_kind"]
    search_fields = ["number", "debtor_name", "resident__last_name"]
    list_select_related = ["resident", "payer", "section"]
    inlines = [InvoiceLineInline]
    EDITABLE_IN_DRAFT = ("comment",)

    def get_fields(self, request, obj=None):
        fields = [f.name for f in Invoice._meta.fields if f.name not in ("id", "establishment_snapshot", "total",
                                                                          "paid_amount")]
        return fields + ["total_euros", "paid_amount_euros", "establishment_identity"]

    def get_readonly_fields(self, request, obj=None):
        editable = self.EDITABLE_IN_DRAFT if (obj is not None and obj.is_draft) else ()
        return [name for name in self.get_fields(request, obj) if name not in editable]

    total_euros = euros("total", _("total"))
    paid_amount_euros = euros("paid_amount", _("réglé"))

    @admin.display(description=_("identité de l'établissement"))
    def establishment_identity(self, obj):
        return readable_json(obj.establishment_snapshot)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        """Issued invoices are read-only: corrections are credit notes."""
        return super().has_change_permission(request, obj) and (obj is None or obj.is_draft)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or obj.is_draft)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(NumberSequence)
class NumberSequenceAdmin(AuditHistoryAdminMixin, admin.ModelAdmin):
    list_display = ["establishment", "kind", "year", "last_number"]
    readonly_fields = ["establishment", "kind", "year", "last_number"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class _ReadOnlyEntriesAdmin(SectionScopedAdmin):
    """Payments and allocations are entries: read in the admin (with their audit trail), written
    only through the services (cancellation with a reason, reversing allocations)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Payment)
class PaymentAdmin(_ReadOnlyEntriesAdmin):
    list_display = ["__str__", "kind", "mode", "debtor_kind", "resident", "payer", "amount", "date", "reference",
                    "cancelled_at", "section"]
    list_filter = ["section", "kind", "mode", "debtor_kind"]
    search_fields = ["reference", "drawer", "resident__last_name"]


@admin.register(PaymentAllocation)
class PaymentAllocationAdmin(_ReadOnlyEntriesAdmin):
    section_lookup = "invoice__section"
    list_display = ["invoice", "payment", "credit_note", "amount", "date", "created_at"]
    search_fields = ["invoice__number"]


class RevenueAccountInline(SectionScopedTabularInline):
    model = RevenueAccount
    extra = 1


@admin.register(AccountMap)
class AccountMapAdmin(SectionScopedAdmin):
    """Account map of an establishment's accounting exports (defaults created on first use)."""

    section_lookup = "establishment__sections"
    list_display = ["establishment", "customer_account", "cheque_account", "transfer_account", "cash_account",
                    "split_by_financing"]
    inlines = [RevenueAccountInline]


class AccountingEntryInline(admin.TabularInline):
    model = AccountingEntry
    fields = ["journal", "number", "date", "piece_ref", "label", "source_key"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(AccountingExport)
class AccountingExportAdmin(SectionScopedAdmin):
    """Exports are built and transmitted by the app (``billing.services.accounting``): read-only here."""

    section_lookup = "establishment__sections"
    list_display = ["__str__", "status", "transmitted_at", "created_at"]
    list_filter = ["establishment", "status"]
    inlines = [AccountingEntryInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or not obj.is_transmitted)
