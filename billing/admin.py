from django.contrib import admin

from structures.admin_scoping import SectionScopedAdmin, SectionScopedTabularInline

from .models import (BillingPeriod, Calendar, CalendarDay, DepartementParameter, Invoice, InvoiceLine,
                     NationalParameter, NumberSequence, Package, PackageItem, Payment, PaymentAllocation, Product,
                     StayPackage, Tariff)


class TariffInline(SectionScopedTabularInline):
    model = Tariff
    extra = 0


@admin.register(Product)
class ProductAdmin(SectionScopedAdmin):
    section_lookup = "establishment__sections"
    list_display = ["code", "label", "kind", "unit", "establishment", "vat_rate"]
    list_filter = ["establishment", "kind", "unit"]
    search_fields = ["code", "label"]
    inlines = [TariffInline]


@admin.register(Tariff)
class TariffAdmin(SectionScopedAdmin):
    section_lookup = "product__establishment__sections"
    list_display = ["product", "valid_from", "price", "act_reference"]
    list_filter = ["product__establishment", "product__code"]
    date_hierarchy = "valid_from"


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
class CalendarDayAdmin(SectionScopedAdmin):
    section_lookup = "calendar__sections"
    list_display = ["calendar", "day", "state", "note"]
    list_filter = ["calendar", "state"]
    date_hierarchy = "day"


@admin.register(NationalParameter)
class NationalParameterAdmin(admin.ModelAdmin):
    list_display = ["kind", "valid_from", "amount", "source"]
    list_filter = ["kind"]


@admin.register(DepartementParameter)
class DepartementParameterAdmin(admin.ModelAdmin):
    list_display = ["departement", "valid_from", "convenience_reduction", "convenience_cap_days", "talon_on_first_day",
                    "death_variable_charges"]
    list_filter = ["departement"]


@admin.register(BillingPeriod)
class BillingPeriodAdmin(SectionScopedAdmin):
    list_display = ["label", "section", "start", "end", "status", "generated_at"]
    list_filter = ["section", "status"]


class InvoiceLineInline(SectionScopedTabularInline):
    model = InvoiceLine
    extra = 0
    fields = ["label", "date_from", "date_to", "quantity", "unit_price", "amount"]

    def has_change_permission(self, request, obj=None):
        return obj is None or obj.is_draft

    def has_add_permission(self, request, obj=None):
        return obj is None or obj.is_draft

    def has_delete_permission(self, request, obj=None):
        return obj is None or obj.is_draft


@admin.register(Invoice)
class InvoiceAdmin(SectionScopedAdmin):
    list_display = ["__str__", "kind", "status", "debtor_kind", "resident", "payer", "total", "issue_date", "section"]
    list_filter = ["section", "kind", "status", "debtor_kind"]
    search_fields = ["number", "debtor_name", "resident__last_name"]
    raw_id_fields = ["resident", "relative", "payer", "payer_group", "credited_invoice", "period"]
    inlines = [InvoiceLineInline]

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
class NumberSequenceAdmin(admin.ModelAdmin):
    list_display = ["establishment", "kind", "year", "last_number"]
    readonly_fields = ["establishment", "kind", "year", "last_number"]

    def has_add_permission(self, request):
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
