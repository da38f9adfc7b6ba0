from django.contrib import admin

from structures.admin_scoping import SectionScopedAdmin, SectionScopedTabularInline

from .models import AidPlan, AidPlanDefault, CoverageRule, Payer, PayerGroup, SocialAidApplication, SocialAidDecision


class PayerGroupInline(SectionScopedTabularInline):
    model = PayerGroup
    extra = 0


@admin.register(Payer)
class PayerAdmin(SectionScopedAdmin):
    section_lookup = "organisation__establishments__sections"
    list_display = ["code", "name", "kind", "departement", "apa_dotation_globale", "chorus_pro", "email"]
    list_filter = ["kind", "chorus_pro", "organisation"]
    search_fields = ["code", "name"]
    inlines = [PayerGroupInline]


@admin.register(PayerGroup)
class PayerGroupAdmin(SectionScopedAdmin):
    section_lookup = "payer__organisation__establishments__sections"
    list_display = ["payer", "code", "label"]


@admin.register(CoverageRule)
class CoverageRuleAdmin(SectionScopedAdmin):
    section_lookup = "stay__section"
    list_display = ["stay", "payer", "group", "scope", "mode", "value", "monthly_cap_units", "valid_from", "valid_to"]
    list_filter = ["payer", "mode", "scope"]
    raw_id_fields = ["stay"]
    filter_horizontal = ["products"]


@admin.register(SocialAidDecision)
class SocialAidDecisionAdmin(SectionScopedAdmin):
    section_lookup = "stay__section"
    list_display = ["stay", "payer", "group", "decision_reference", "valid_from", "valid_to", "monthly_resources",
                    "housing_allowance"]
    list_filter = ["payer"]
    raw_id_fields = ["stay"]


@admin.register(SocialAidApplication)
class SocialAidApplicationAdmin(SectionScopedAdmin):
    section_lookup = "stay__section"
    list_display = ["stay", "payer", "filed_on", "status", "decided_on", "decision"]
    list_filter = ["status", "payer"]
    raw_id_fields = ["stay", "decision"]
    readonly_fields = ["updated_by", "updated_at"]


@admin.register(AidPlanDefault)
class AidPlanDefaultAdmin(SectionScopedAdmin):
    section_lookup = "product__establishment__sections"
    list_display = ["payer", "product", "rate", "coverage_percent", "monthly_cap_units", "holiday_cap_units",
                    "billing_mode"]
    list_filter = ["payer"]


@admin.register(AidPlan)
class AidPlanAdmin(SectionScopedAdmin):
    section_lookup = "stay__section"
    list_display = ["stay", "payer", "product", "valid_from", "valid_to", "rate", "monthly_cap_units", "status"]
    list_filter = ["status", "payer"]
    raw_id_fields = ["stay"]
    readonly_fields = ["status", "validated_at", "validated_by"]

    def save_model(self, request, obj, form, change):
        """As in the app (``aid_plan_save``): a changed plan is applied again only once re-validated."""
        if change and form.has_changed():
            obj.status, obj.validated_at, obj.validated_by = AidPlan.Status.ENTERED, None, None
        super().save_model(request, obj, form, change)
