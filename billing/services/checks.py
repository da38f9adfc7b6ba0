"""Pre-flight checks of a period: what would make invoices wrong, each with where to fix it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.urls import reverse
from django.utils.translation import gettext as _

from payers.models import CoverageRule, Payer

from core.formats import fr_date

from ..models import BillingPeriod
from ..models.catalog import DEPENDENCY_KINDS
from .period_data import PeriodData


@dataclass
class Check:
    level: str  # "error" blocks generation, "warning" does not
    message: str
    link: str = ""
    link_label: str = ""


# Checks contributed by apps above billing (e.g. sepa: direct debit without an active mandate). They
# register at startup (AppConfig.ready) so that billing never imports them: fn(*, period, stays) -> [Check].
EXTRA_PERIOD_CHECKS: list = []


def period_check_register(fn):
    """Add a pre-flight check provider (idempotent); usable as a decorator."""
    if fn not in EXTRA_PERIOD_CHECKS:
        EXTRA_PERIOD_CHECKS.append(fn)
    return fn


def _ranges(days: list[date]) -> str:
    if not days:
        return ""
    parts, start, prev = [], days[0], days[0]
    for day in days[1:] + [None]:
        if day is not None and day == prev + timedelta(days=1):
            prev = day
            continue
        parts.append(fr_date(start) if start == prev else f"{fr_date(start)} – {fr_date(prev)}")
        if day is not None:
            start = prev = day
    return ", ".join(parts)


def period_checks(*, period: BillingPeriod, data: PeriodData | None = None) -> list[Check]:
    """What would make the period's invoices wrong (errors block the generation), each with where to fix
    it. ``data``: the period's rows, when the generation that follows reuses them."""
    section = period.section
    data = data or PeriodData(section=section, start=period.start, end=period.end)
    checks = _calendar_checks(period=period, data=data)
    stays = data.present_stays
    stay_checks, used_products, dependency_needed = _stay_checks(period=period, data=data)
    checks.extend(stay_checks)
    checks.extend(_tariff_checks(period=period, data=data, used_products=used_products,
                                 dependency_needed=dependency_needed))
    checks.extend(_address_checks(section=section, data=data))
    for provider in EXTRA_PERIOD_CHECKS:
        checks.extend(provider(period=period, stays=stays))
    if not stays:
        checks.append(Check("warning", _("Aucun séjour dans la section %(alias)s sur la période.") % {
            "alias": section.alias}))
    return checks


def _calendar_checks(*, period: BillingPeriod, data: PeriodData) -> list[Check]:
    alias = period.section.alias
    calendar = data.calendar
    if calendar is None:
        return [Check("error", _("Aucun calendrier n'est rattaché à la section %(alias)s.") % {"alias": alias},
                      reverse("billing:calendars", kwargs={"alias": alias}), _("Calendriers"))]
    missing = data.calendar_missing_days
    if not missing:
        return []
    return [Check("error", _("Le calendrier %(code)s n'a pas été généré pour la période : %(days)s.") % {
        "code": calendar.code, "days": _ranges(missing)},
        reverse("billing:calendar-detail", kwargs={"alias": alias, "pk": calendar.pk}), _("Prolonger le calendrier"))]


def _apa_stays(data: PeriodData) -> set[int]:
    """The stays with an individual APA decision: a coverage rule taking a share of the dependency, or a
    validated aid plan on a dependency product."""
    products = data.products_for({pid for rule in data.coverage_rules for pid in rule.product_ids}
                                 | {plan.product_id for plan in data.aid_plans})
    stays = {rule.stay_id for rule in data.coverage_rules
             if rule.mode == CoverageRule.Mode.ABOVE_TALON
             or rule.scope in (CoverageRule.Scope.DEPENDENCY, CoverageRule.Scope.ALL)
             or any(products[pid].kind in DEPENDENCY_KINDS for pid in rule.product_ids)}
    return stays | {plan.stay_id for plan in data.aid_plans if products[plan.product_id].kind in DEPENDENCY_KINDS}


def _stay_checks(*, period: BillingPeriod, data: PeriodData) -> tuple[list[Check], set[int], bool]:
    """Each stay has a package from its first day, and a GIR when its package bills dependency by GIR
    (with the APA warning of §3). Returns the checks, the products the packages use, and whether a
    dependency tariff is needed."""
    section, start = period.section, period.start
    alias = section.alias
    checks: list[Check] = []
    apa_stays = _apa_stays(data)
    used_products: set[int] = set()
    dependency_needed = False
    for stay in data.present_stays:
        first = max(start, stay.entry_date)
        assigned = sorted(data.package_assignments.get(stay.pk, []))
        if not assigned or assigned[0][0] > first:
            checks.append(Check("error", _("%(name)s : séjour sans forfait d'hébergement au %(day)s.") % {
                "name": stay.resident.full_name, "day": fr_date(first)},
                reverse("billing:stay-billing", kwargs={"alias": alias, "stay_pk": stay.pk}), _("Affecter un forfait")))
            continue
        packages = [data.packages[package_id] for _valid_from, package_id in assigned]
        for _pk, _by_gir, products in packages:
            used_products.update(p.pk for p in products)
        if not any(by_gir for _pk, by_gir, _products in packages):
            continue
        dependency_needed = True
        history = sorted(data.girs.get(stay.resident_id, []))
        if not history or history[0][0] > first:
            checks.append(Check("error", _("%(name)s : GIR inconnu au %(day)s (tarif dépendance impossible).") % {
                "name": stay.resident.full_name, "day": fr_date(first)},
                _resident_url(alias, stay.resident_id, "?tab=stays"), _("Saisir le GIR")))
        elif history[-1][1] <= 4 and stay.pk not in apa_stays and stay.resident.age_on(first) >= 60:
            # §3: the départements under dotation globale need no per-resident rule; the others
            # need an individual APA decision, without which the resident pays the full GIR tariff.
            domicile = stay.resident.domicile_secours or section.establishment.departement
            if domicile not in data.apa_dotation:
                checks.append(Check("warning", _(
                    "%(name)s : domicile de secours %(dept)s (hors dotation globale), GIR %(gir)s sans décision "
                    "APA individuelle — la totalité du tarif dépendance sera facturée au résident.") % {
                    "name": stay.resident.full_name, "dept": domicile, "gir": history[-1][1]},
                    _resident_url(alias, stay.resident_id, "?tab=stays"), _("Saisir la décision APA")))
    return checks, used_products, dependency_needed


def _tariff_checks(*, period: BillingPeriod, data: PeriodData, used_products: set[int],
                   dependency_needed: bool) -> list[Check]:
    """Every product the period bills has a tariff from its first day."""
    alias, start = period.section.alias, period.start
    checks = []
    wanted = [p for p in data.products.values()
              if p.pk in used_products or (dependency_needed and p.kind in DEPENDENCY_KINDS)]
    for product in wanted:
        starts = sorted(valid_from for valid_from, _price in data.tariffs.get(product.pk, []))
        if not starts or starts[0] > start:
            since = fr_date(starts[0]) if starts else None
            checks.append(Check("error", (_("Le produit %(code)s n'a pas de tarif avant le %(since)s.") % {
                "code": product.code, "since": since}) if since else
                _("Le produit %(code)s n'a aucun tarif.") % {"code": product.code},
                reverse("billing:product-detail", kwargs={"alias": alias, "pk": product.pk}), _("Saisir un tarif")))
    return checks


def _address_checks(*, section, data: PeriodData) -> list[Check]:
    """Every debtor of the period without a postal address (warning: the invoice would leave without one).

    Debtors: each resident — or the paying relative —, and every payer of a coverage rule or social-aid
    decision of the period. A *destinataire des factures* without address is not fatal: issuing then
    addresses the resident's invoices to the resident's own address (said in the message)."""
    alias = section.alias
    checks: list[Check] = []
    stays = data.present_stays
    relatives = data.relatives
    seen: set[int] = set()
    for stay in sorted(stays, key=lambda s: (s.resident.last_name, s.resident.first_name, s.pk)):
        resident = stay.resident
        if resident.pk in seen:
            continue
        seen.add(resident.pk)
        own = relatives.get(resident.pk, [])
        paying = next((r for r in own if r.is_payer), None)
        recipient = next((r for r in own if r.receives_invoices), None)
        if paying is not None and not paying.address_lines:
            checks.append(Check("warning", _(
                "%(relative)s, proche payeur de %(name)s, n'a pas d'adresse postale : sa facture partirait sans "
                "adresse.") % {"relative": str(paying), "name": resident.full_name},
                _resident_url(alias, resident.pk, "?tab=relatives"), _("Saisir l'adresse")))
        if recipient is not None and not recipient.address_lines:
            if resident.address_lines:
                message = _("%(relative)s, destinataire des factures de %(name)s, n'a pas d'adresse postale : les "
                            "factures seront adressées au résident, à sa propre adresse.")
            else:
                message = _("%(relative)s, destinataire des factures de %(name)s, n'a pas d'adresse postale, et le "
                            "résident non plus : ses factures partiraient sans adresse.")
            checks.append(Check("warning", message % {"relative": str(recipient), "name": resident.full_name},
                                _resident_url(alias, resident.pk, "?tab=relatives"), _("Saisir l'adresse")))
        elif recipient is None and not resident.address_lines:
            checks.append(Check("warning", _(
                "%(name)s n'a pas d'adresse postale (ni destinataire des factures) : ses factures partiraient sans "
                "adresse.") % {"name": resident.full_name}, _resident_url(alias, resident.pk), _("Saisir l'adresse")))
    start, end = data.start, data.end
    present = {s.pk for s in stays}
    payer_ids = {rule.payer_id for rule in data.coverage_rules
                 if rule.stay_id in present and rule.invoiced and rule.valid_from <= end
                 and not (rule.valid_to and rule.valid_to < start)}
    payer_ids |= {d.payer_id for d in data.social_aid_decisions
                  if d.stay_id in present and d.valid_from <= end and not (d.valid_to and d.valid_to < start)}
    for payer in Payer.objects.filter(pk__in=payer_ids).order_by("name"):
        if not payer.address_lines:
            checks.append(Check("warning", _("Le payeur %(payer)s n'a pas d'adresse postale : ses factures partiraient "
                                             "sans adresse.") % {"payer": payer.name},
                                reverse("admin:payers_payer_change", args=[payer.pk]), _("Saisir l'adresse")))
        if payer.chorus_pro:
            checks.extend(_chorus_checks(alias, payer))
    return checks


def _resident_url(alias: str, resident_id: int, suffix: str = "") -> str:
    """Reversed only when a check is actually added (most residents have none)."""
    return reverse("residents:detail", kwargs={"alias": alias, "pk": resident_id}) + suffix


def _chorus_checks(alias: str, payer) -> list[Check]:
    """A payer on Chorus Pro whose invoices could not be issued (``issuing._einvoice_snapshots``)."""
    from stdnum.fr import siret as stdnum_siret

    problems = []
    if not stdnum_siret.is_valid(payer.siret or ""):
        problems.append(_("SIRET absent ou invalide"))
    if payer.chorus_engagement_required and not payer.chorus_engagement_number:
        problems.append(_("numéro d'engagement obligatoire non saisi"))
    if not problems:
        return []
    return [Check("warning", _("Le payeur %(payer)s reçoit ses factures par Chorus Pro (Factur-X) : %(problems)s. "
                               "L'émission de ses factures sera refusée.") % {
        "payer": payer.name, "problems": ", ".join(problems)},
        reverse("payers:settings", kwargs={"alias": alias, "pk": payer.pk}), _("Paramétrage du payeur"))]


def period_blocking(checks: list[Check]) -> bool:
    return any(c.level == "error" for c in checks)
