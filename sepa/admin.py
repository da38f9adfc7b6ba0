from django.contrib import admin

from structures.admin_scoping import SectionScopedAdmin

from .models import Mandate


@admin.register(Mandate)
class MandateAdmin(SectionScopedAdmin):
    section_lookup = "establishment__sections"
    list_display = ["rum", "account_holder", "resident", "establishment", "status", "next_sequence_type",
                    "signature_date", "last_collection_date"]
    list_filter = ["establishment", "status", "next_sequence_type"]
    search_fields = ["rum", "account_holder", "resident__last_name", "iban"]
    raw_id_fields = ["resident", "relative"]
