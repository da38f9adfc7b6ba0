"""Imports part of the demo association: the default absence-code correspondence table of
demo-data.md (external code → Séjour reason) for every establishment. Idempotent: an existing
table is left as it is (it may have been replaced through the browser)."""
from __future__ import annotations

from imports.models import AbsenceCodeMapping
from residents.models import AbsenceReason

DEFAULT_MAPPING = [("1", "C"), ("2", "H"), ("3", "P"), ("4", "S")]  # CODEEXT, CODEMR


def demo_absence_mappings(*, establishments: dict) -> int:
    made = 0
    for establishment in establishments.values():
        if AbsenceCodeMapping.objects.filter(establishment=establishment).exists():
            continue
        reasons = {r.code: r for r in AbsenceReason.objects.filter(establishment=establishment)}
        AbsenceCodeMapping.objects.bulk_create([
            AbsenceCodeMapping(establishment=establishment, external_code=external, reason=reasons[code])
            for external, code in DEFAULT_MAPPING if code in reasons])
        made += 1
    return made
