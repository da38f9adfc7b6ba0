"""Pre-flight checks of a period: what would make invoices wrong, each with where to fix it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext as _

from payers.models import AidPlan, CoverageRule, Payer, SocialAidDecision
from residents.models import GirAssessment, Relative

from core.formats import fr_date

from ..models import BillingPeriod, Package, PackageItem, Product, StayPackage, Tariff
from ..models.catalog import DEPENDENCY_KINDS
from . import calendars as calendar_services
from .generation import apa_dotation_payers, period_stays


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


def period_checks(*, period: BillingPeriod) -> list[Check]:
    section = period.section
    alias = section.alias
    checks: list[Check] = []
    start, end = period.start, period.end
    calendars = list(section.calendars.all())
    if not calendars:
        checks.append(Check("error", _("Aucun calendrier n'est rattaché à la section %(alias)s.") % {"alias": alias},
                            reverse("billing:calendars", kwargs={"alias": alias}), _("Calendriers")))
    else:
        calendar = calendars[0]
        missing = calendar_services.calendar_missing_days(calendar=calendar, start=start, end=end)
        if missing:
            checks.append(Check("error", _("Le calendrier %(code)s n'a pas été généré pour la période : %(days)s.") % {
                "code": calendar.code, "days": _ranges(missing)},
                reverse("billing:calendar-detail", kwargs={"alias": alias, "pk": calendar.pk}),
                _("Prolonger le calendrier")))
    stays = list(period_stays(section=section, start=start, end=end).filter(entry_date__lte=end))
    stays = [s for s in stays if s.end_date is None or s.end_date >= start]
    stay_ids = [s.pk for s in stays]
    # Plain rows, each package's products read once (a section has a few packages, many stays).
    assignments = list(StayPackage.objects.filter(stay_id__in=stay_ids).values_list("stay_id", "valid_from",
                                                                                  "package_id"))
    package_info = {pk: (by_gir, set()) for pk, by_gir in Package.objects.filter(
        pk__in={a[2] for a in assignments}).values_list("pk", "dependency_by_gir")}
    for package_id, product_id in PackageItem.objects.filter(package_id__in=package_info).values_list(
            "package_id", "product_id"):
        package_info[package_id][1].add(product_id)
    packages: dict[int, list] = {}
    for stay_id, valid_from, package_id in assignments:
        packages.setdefault(stay_id, []).append((valid_from, package_id))
    girs: dict[int, list] = {}
    for resident_id, valid_from, gir in GirAssessment.objects.filter(
            resident_id__in={s.resident_id for s in stays}).values_list("resident_id", "valid_from", "gir"):
        girs.setdefault(resident_id, []).append((valid_from, gir))
    # An individual APA decision: any coverage rule of the stay that takes a share of the dependency.
    apa_stays = set(CoverageRule.objects.filter(stay_id__in=stay_ids).filter(
        Q(mode=CoverageRule.Mode.ABOVE_TALON) | Q(scope__in=[CoverageRule.Scope.DEPENDENCY, CoverageRule.Scope.ALL])
        | Q(products__kind__in=DEPENDENCY_KINDS)).values_list("stay_id", flat=True))
    apa_stays |= set(AidPlan.objects.filter(stay_id__in=stay_ids, status=AidPlan.Status.VALIDATED,
                                            product__kind__in=DEPENDENCY_KINDS).values_list("stay_id", flat=True))
    dotation = apa_dotation_payers(organisation_id=section.establishment.organisation_id)
    used_products: set[int] = set()
    dependency_needed = False
    for stay in stays:
        first = max(start, stay.entry_date)
        assigned = sorted(packages.get(stay.pk, []))
        if not assigned or assigned[0][0] > first:
            checks.append(Check("error", _("%(name)s : séjour sans forfait d'hébergement au %(day)s.") % {
                "name": stay.resident.full_name, "day": fr_date(first)},
                reverse("billing:stay-billing", kwargs={"alias": alias, "stay_pk": stay.pk}), _("Affecter un forfait")))
            continue
        by_gir = any(package_info[package_id][0] for _valid_from, package_id in assigned)
        for _valid_from, package_id in assigned:
            used_products.update(package_info[package_id][1])
        if by_gir:
            dependency_needed = True
            history = sorted(girs.get(stay.resident_id, []))
            if not history or history[0][0] > first:
                checks.append(Check("error", _("%(name)s : GIR inconnu au %(day)s (tarif dépendance impossible).") % {
                    "name": stay.resident.full_name, "day": fr_date(first)},
                    _resident_url(alias, stay.resident_id, "?tab=stays"), _("Saisir le GIR")))
            elif history[-1][1] <= 4 and stay.pk not in apa_stays and stay.resident.age_on(first) >= 60:
                # §3: the départements under dotation globale need no per-resident rule; the others
                # need an individual APA decision, without which the resident pays the full GIR tariff.
                domicile = stay.resident.domicile_secours or section.establishment.departement
                if domicile not in dotation:
                    checks.append(Check("warning", _(
                        "%(name)s : domicile de secours %(dept)s (hors dotation globale), GIR %(gir)s sans décision "
                        "APA individuelle — la totalité du tarif dépendance sera facturée au résident.") % {
                        "name": stay.resident.full_name, "dept": domicile, "gir": history[-1][1]},
                        _resident_url(alias, stay.resident_id, "?tab=stays"), _("Saisir la décision APA")))
    products = list(Product.objects.filter(establishment=section.establishment))
    wanted = [p for p in products if p.pk in used_products or (dependency_needed and p.kind in DEPENDENCY_KINDS)]
    tariffs: dict[int, list[date]] = {}
    for product_id, valid_from in Tariff.objects.filter(product__in=wanted).values_list("product_id", "valid_from"):
        tariffs.setdefault(product_id, []).append(valid_from)
    for product in wanted:
        starts = sorted(tariffs.get(product.pk, []))
        if not starts or starts[0] > start:
            since = fr_date(starts[0]) if starts else None
            checks.append(Check("error", (_("Le produit %(code)s n'a pas de tarif avant le %(since)s.") % {
                "code": product.code, "since": since}) if since else
                _("Le produit %(code)s n'a aucun tarif.") % {"code": product.code},
                reverse("billing:product-detail", kwargs={"alias": alias, "pk": product.pk}), _("Saisir un tarif")))
    checks.extend(_address_checks(section=section, stays=stays, start=start, end=end))
    for provider in EXTRA_PERIOD_CHECKS:
        checks.extend(provider(period=period, stays=stays))
    if not stays:
        checks.append(Check("warning", _("Aucun séjour dans la section %(alias)s sur la période.") % {"alias": alias}))
    return checks


def _address_checks(*, section, stays: list, start: date, end: date) -> list[Check]:
    """Every debtor of the period without a postal address (warning: the invoice would leave without one).

    Debtors: each resident — or the paying relative —, and every payer of a coverage rule or social-aid
    decision of the period. A *destinataire des factures* without address is not fatal: issuing then
    addresses the resident's invoices to the resident's own address (said in the message)."""
    alias = section.alias
    checks: list[Check] = []
    stay_ids = [s.pk for s in stays]
    resident_ids = {s.resident_id for s in stays}
    relatives: dict[int, list[Relative]] = {}
    for relative in Relative.objects.filter(resident_id__in=resident_ids).order_by("pk"):
        relatives.setdefault(relative.resident_id, []).append(relative)
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
    payer_ids = set(CoverageRule.objects.filter(stay_id__in=stay_ids, invoiced=True, valid_from__lte=end)
                    .exclude(valid_to__lt=start).values_list("payer_id", flat=True))
    payer_ids |= set(SocialAidDecision.objects.filter(stay_id__in=stay_ids, valid_from__lte=end)
                     .exclude(valid_to__lt=start).values_list("payer_id", flat=True))
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
