"""*État de reversement* (billing-rules §8): for a département and a date range, what its social-aid
residents contributed — resources, housing allowance, participations billed (net of credit notes and
pocket-money settlements), the 90 % of resources (plus the housing allowance) due to the département
and the pocket money left to the resident. PDF (WeasyPrint) and XLSX (``core.exports``)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.template.loader import get_template
from django.utils import timezone
from django.utils.translation import gettext as _

from core.exports import xlsx_bytes
from core.formats import fr_date
from core.money import ZERO, format_euros, round_money

from .issuing import establishment_snapshot
from .pdf import html_to_pdf
from .pocket_money import pocket_money_rows

NINETY_PERCENT = Decimal("0.90")


@dataclass
class ReversalRow:
    resident_name: str
    decision_reference: str
    months: int
    resources: Decimal
    housing_allowance: Decimal
    contributions: Decimal
    due: Decimal
    pocket_money: Decimal


@dataclass
class Reversal:
    payer: object
    section: object
    start: date
    end: date
    rows: list[ReversalRow]

    def total(self, name: str) -> Decimal:
        return round_money(sum((getattr(r, name) for r in self.rows), ZERO))

    @property
    def totals(self) -> dict:
        return {name: self.total(name) for name in ("resources", "housing_allowance", "contributions", "due",
                                                    "pocket_money")}


def reversal_compute(*, section, payer, start: date, end: date) -> Reversal:
    rows = []
    for row in pocket_money_rows(section=section, start=start, end=end):
        if row.decision.payer_id != payer.pk:
            continue
        housing = round_money(row.decision.housing_allowance * row.months)
        rows.append(ReversalRow(
            resident_name=row.resident_name, decision_reference=row.decision_reference, months=row.months,
            resources=row.resources, housing_allowance=housing, contributions=row.contributions,
            due=round_money(row.resources * NINETY_PERCENT) + housing,
            pocket_money=round_money(row.resources + housing - row.contributions)))
    return Reversal(payer=payer, section=section, start=start, end=end, rows=rows)


def reversal_filename(reversal: Reversal, extension: str) -> str:
    return (f"etat-reversement-{reversal.payer.code}-{reversal.section.alias}-"
            f"{reversal.start:%Y%m%d}-{reversal.end:%Y%m%d}.{extension}")


def reversal_pdf(reversal: Reversal) -> bytes:
    html = get_template("billing/pdf/reversal.html").render({
        "r": reversal, "est": establishment_snapshot(reversal.section.establishment),
        "start": fr_date(reversal.start), "end": fr_date(reversal.end), "printed": fr_date(timezone.localdate()),
        "rows": [{"name": r.resident_name, "ref": r.decision_reference, "months": r.months,
                  **{k: format_euros(getattr(r, k)) for k in ("resources", "housing_allowance", "contributions",
                                                              "due", "pocket_money")}} for r in reversal.rows],
        "totals": {k: format_euros(v) for k, v in reversal.totals.items()}})
    return html_to_pdf(html)


def reversal_xlsx(reversal: Reversal) -> bytes:
    rows = [[r.resident_name, r.decision_reference, r.months, r.resources, r.housing_allowance, r.contributions,
             r.due, r.pocket_money] for r in reversal.rows]
    totals = reversal.totals
    rows.append([_("Total"), "", "", totals["resources"], totals["housing_allowance"], totals["contributions"],
                 totals["due"], totals["pocket_money"]])
    return xlsx_bytes(_("Reversement"), rows, headers=[
        "BENEFICIAIRE", "DECISION", "MOIS", "RESSOURCES", "ALLOCATION_LOGEMENT", "PARTICIPATIONS_FACTUREES",
        "DU_AU_DEPARTEMENT_90", "ARGENT_DE_POCHE"], widths=[30, 18, 6, 14, 14, 16, 16, 14])
