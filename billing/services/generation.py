"""Period generation: load a section's data in a bounded number of queries, run the engine,
replace the period's draft invoices (issued ones are never touched)."""
from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from core.db import insert_values
from core.money import round_money
from core.formats import fr_date
from payers.models import AidPlan, CoverageRule, Payer, SocialAidDecision
from residents.models import Absence, GirAssessment, Relative, Stay

from ..models import (BillingPeriod, CalendarDay, DepartementParameter, Invoice, InvoiceLine, NationalParameter,
                      Package, Product, StayPackage, Tariff)
from ..models.catalog import DEPENDENCY_KINDS
from . import engine, social_aid
from .calendars import french_holidays
from .dated import Dated

REASON_SUFFIX = {
    "absence_hospital": _("absence hospitalisation (à partir du 4e jour)"),
    "absence_psy": _("absence hospitalisation psychiatrique (à partir du 4e jour)"),
    "absence_convenience": _("absence pour convenance (à partir du 4e jour)"),
    "absence_convenience_cap": _("absence pour convenance au-delà du plafond annuel"),
    "after_death": _("après décès, effets dans la chambre"),
    "ash_contribution": _("participation du résident (aide sociale : ressources moins argent de poche)"),
}
DEATH_LOOKAHEAD = timedelta(days=31)


def section_calendar(section):
    calendars = list(section.calendars.all())
    if not calendars:
        raise ValidationError(_("Aucun calendrier n'est rattaché à la section %(alias)s.") % {"alias": section.alias})
    return calendars[0]


def load_context(*, section, start: date, end: date) -> engine.Context:
    establishment = section.establishment
    calendar = section_calendar(section)
    days = dict(CalendarDay.objects.filter(calendar=calendar, day__range=(start, end)).values_list("day", "state"))
    missing = [d for d in (start + timedelta(days=i) for i in range((end - start).days + 1)) if d not in days]
    if missing:
        shown = ", ".join(fr_date(d) for d in missing[:5]) + (" …" if len(missing) > 5 else "")
        raise ValidationError(_(
            "Le calendrier %(code)s n'a pas été généré pour la période (%(count)s jour(s) manquant(s) : %(days)s) — "
            "génération impossible. Prolongez le calendrier existant (Calendriers → Générer une année).") % {
            "code": calendar.code, "count": len(missing), "days": shown})
    products = list(Product.objects.filter(establishment=establishment))
    tariffs: dict[int, list] = defaultdict(list)
    for t in Tariff.objects.filter(product__establishment=establishment).values("product_id", "valid_from", "price"):
        tariffs[t["product_id"]].append((t["valid_from"], t["price"]))
    national = defaultdict(list)
    for p in NationalParameter.objects.values("kind", "valid_from", "amount"):
        national[p["kind"]].append((p["valid_from"], p["amount"]))
    dept_rows = [(p.valid_from, p) for p in DepartementParameter.objects.filter(departement=establishment.departement)]
    return engine.Context(
        establishment_departement=establishment.departement,
        apa_dotation=apa_dotation_payers(organisation_id=establishment.organisation_id),
        tariffs={pid: Dated(rows) for pid, rows in tariffs.items()},
        calendar=days,
        holidays=frozenset(french_holidays(years=list(range(start.year, end.year + 1)),
                                           departement=establishment.departement)),
        products_by_kind={p.kind: p for p in products if p.kind in DEPENDENCY_KINDS},
        hospital_charge=Dated(national[NationalParameter.Kind.HOSPITAL_DAILY_CHARGE]),
        psychiatric_charge=Dated(national[NationalParameter.Kind.PSYCHIATRIC_DAILY_CHARGE]),
        pocket_money_minimum=Dated(national[NationalParameter.Kind.POCKET_MONEY_MINIMUM]),
        departement=Dated(dept_rows) if dept_rows else Dated([(date(2000, 1, 1),
                                                              DepartementParameter.default(establishment.departement))]),
    )


def apa_dotation_payers(*, organisation_id: int) -> dict[str, tuple]:
    """département code -> (payer id, APA group id, label) for the départements that pay APA to the
    establishment under dotation globale (payer setting « APA en dotation globale »)."""
    result = {}
    for payer in (Payer.objects.filter(organisation_id=organisation_id, kind=Payer.Kind.DEPARTEMENT,
                                       apa_dotation_globale=True).exclude(departement="")
                  .prefetch_related("groups").order_by("pk")):
        group = next((g for g in payer.groups.all() if g.code == "APA"), None)
        result.setdefault(payer.departement, (payer.pk, group.pk if group else None,
                                              group.label if group else payer.name))
    return result


def period_stays(*, section, start: date, end: date):
    return (Stay.objects.filter(section=section, entry_date__lte=end)
            .filter(Q(end_date__isnull=True) | Q(end_date__gte=start - DEATH_LOOKAHEAD))
            .select_related("resident").order_by("resident__last_name", "resident__first_name", "pk"))


def load_stays(*, section, start: date, end: date, stay_pks=None) -> list[engine.StayData]:
    """The engine's data of the section's stays over [start, end] (``stay_pks``: only those stays)."""
    queryset = period_stays(section=section, start=start, end=end)
    if stay_pks is not None:
        queryset = queryset.filter(pk__in=stay_pks)
    stays = [s for s in queryset
             if s.end_date is None or s.end_date >= start or (s.end_reason == "death" and s.room_emptied_on
                                                                and s.room_emptied_on >= start)]
    stay_ids = [s.pk for s in stays]
    resident_ids = {s.resident_id for s in stays}
    # Each package (and its products) is loaded once and shared by the stays that use it.
    assignments = list(StayPackage.objects.filter(stay_id__in=stay_ids).values_list("stay_id", "valid_from",
                                                                                  "package_id"))
    package_data = {}
    for package in (Package.objects.filter(pk__in={a[2] for a in assignments})
                    .prefetch_related("items__product")):
        package_data[package.pk] = (package.pk, package.dependency_by_gir,
                                    [item.product for item in package.items.all()])
    packages = defaultdict(list)
    for stay_id, valid_from, package_id in assignments:
        packages[stay_id].append((valid_from, package_data[package_id]))
    girs = defaultdict(list)
    for g in GirAssessment.objects.filter(resident_id__in=resident_ids).values("resident_id", "valid_from", "gir"):
        girs[g["resident_id"]].append((g["valid_from"], g["gir"]))
    absences = defaultdict(list)
    convenience = defaultdict(lambda: defaultdict(list))
    year_start = date(start.year, 1, 1)
    for a in (Absence.objects.filter(stay__resident_id__in=resident_ids, last_day__gte=year_start - timedelta(days=62),
                                     first_day__lte=end)
              .values("stay_id", "stay__resident_id", "first_day", "last_day", "reason__rule")):
        info = engine.AbsenceInfo(a["first_day"], a["last_day"], a["reason__rule"])
        absences[a["stay__resident_id"]].append(info)
        if info.rule == "CONVENIENCE":
            day = info.first_day
            while day <= info.last_day:
                convenience[a["stay__resident_id"]][day.year].append(day)
                day += timedelta(days=1)
    rules = defaultdict(list)
    for rule in (CoverageRule.objects.filter(stay_id__in=stay_ids).select_related("payer", "group")
                 .prefetch_related("products").order_by("priority", "pk")):
        rules[rule.stay_id].append(engine.CoverageRuleData(
            rule_id=rule.pk, payer_id=rule.payer_id, group_id=rule.group_id, scope=rule.scope,
            product_ids=frozenset(p.pk for p in rule.products.all()), mode=rule.mode, value=rule.value,
            monthly_cap_units=rule.monthly_cap_units, valid_from=rule.valid_from, valid_to=rule.valid_to,
            invoiced=rule.invoiced and not (rule.mode == "above_talon" and rule.payer.apa_dotation_globale),
            label=rule.group.label if rule.group else rule.payer.name))
    decisions = defaultdict(list)
    for d in (SocialAidDecision.objects.filter(stay_id__in=stay_ids).select_related("payer", "group")
              .order_by("valid_from")):
        decisions[d.stay_id].append(social_aid.DecisionData(
            payer_id=d.payer_id, group_id=d.group_id, valid_from=d.valid_from, valid_to=d.valid_to,
            resources=d.monthly_resources, housing_allowance=d.housing_allowance,
            minimum=d.pocket_money_minimum if d.pocket_money_minimum is not None else d.payer.pocket_money_minimum,
            label=d.group.label if d.group else d.payer.name))
    plans = aid_plans_by_stay(stay_ids=stay_ids, start=start, end=end)
    paying = {}
    for r in Relative.objects.filter(resident_id__in=resident_ids, is_payer=True).order_by("pk").values(
            "pk", "resident_id"):
        paying.setdefault(r["resident_id"], r["pk"])
    result = []
    for s in stays:
        result.append(engine.StayData(
            stay_id=s.pk, resident_id=s.resident_id, resident_name=s.resident.full_name,
            entry_date=s.entry_date, end_date=s.end_date, end_reason=s.end_reason, room_emptied_on=s.room_emptied_on,
            packages=Dated(packages[s.pk]), gir=Dated(girs[s.resident_id]), absences=absences[s.resident_id],
            convenience_days_by_year=convenience[s.resident_id], rules=rules[s.pk],
            paying_relative_id=paying.get(s.resident_id), birth_date=s.resident.birth_date,
            attendance=s.attendance_weekday_set, social_aid=decisions[s.pk],
            domicile_secours=s.resident.domicile_secours, aid_plans=plans[s.pk]))
    return result


def aid_plans_by_stay(*, stay_ids, start: date, end: date) -> dict[int, list[engine.AidPlanData]]:
    """The validated aid plans of the stays in force during [start, end], in one query (a plan saisi is
    never applied: the pre-flight check names it)."""
    plans = defaultdict(list)
    for plan in (AidPlan.objects.filter(stay_id__in=stay_ids, status=AidPlan.Status.VALIDATED, valid_from__lte=end)
                 .exclude(valid_to__lt=start).select_related("payer", "group").order_by("valid_from", "pk")):
        plans[plan.stay_id].append(engine.AidPlanData(
            plan_id=plan.pk, payer_id=plan.payer_id, group_id=plan.group_id, product_id=plan.product_id,
            valid_from=plan.valid_from, valid_to=plan.valid_to, rate=plan.rate, percent=plan.coverage_percent,
            monthly_cap=plan.monthly_cap_units, holiday_rate=plan.holiday_rate,
            holiday_percent=plan.holiday_coverage_percent, holiday_cap=plan.holiday_cap_units,
            plan_rate_billing=plan.billing_mode == AidPlan.BillingMode.PLAN_RATE,
            label=plan.group.label if plan.group else plan.payer.name))
    return plans


def compute_period(*, section, start: date, end: date) -> tuple[list[engine.Line], list[str], dict]:
    ctx = load_context(section=section, start=start, end=end)
    stays = load_stays(section=section, start=start, end=end)
    warnings: list[str] = []
    lines: list[engine.Line] = []
    names = {}
    for stay in stays:
        names[stay.resident_id] = stay.resident_name
        lines.extend(engine.compute_stay(stay=stay, ctx=ctx, start=start, end=end, warnings=warnings))
    return lines, warnings, names


def line_label(line: engine.Line, *, resident_name: str, for_payer: bool, payer_note: str = "") -> str:
    label = line.product.label
    if line.reason in REASON_SUFFIX:
        label = f"{label} – {REASON_SUFFIX[line.reason]}"
    if line.prorata:
        label = f"{label} – {_('prorata %(days)s/%(month)s jours') % {'days': line.prorata[0], 'month': line.prorata[1]}}"
    if payer_note and for_payer:
        label = f"{label} ({payer_note})"
    elif payer_note:
        label = f"{label} – {_('part à votre charge')}"
    if for_payer:
        label = f"{resident_name} — {label}"
    return label[:250]


@transaction.atomic
def period_generate(*, period: BillingPeriod, progress=None) -> dict:
    """Replace the period's draft invoices with freshly computed ones. Issued invoices are kept; a
    (debtor, stay) pair that already has issued lines in the period gets no draft line — what changed
    for it since is a régularisation (``regularisation.period_regularisations``), so a day is never
    billed twice to the same debtor and a new share is never dropped."""
    from .regularisation import issued_pairs

    period = BillingPeriod.objects.select_for_update(of=("self",)).select_related("section__establishment").get(
        pk=period.pk)  # of=self: never lock the section and establishment rows other sections share
    if period.status != BillingPeriod.Status.OPEN:
        raise ValidationError(_("La période %(label)s est clôturée.") % {"label": period.label})
    section = period.section
    lines, warnings, names = compute_period(section=section, start=period.start, end=period.end)
    if progress:
        progress(1, 3, _("Calcul terminé : %(n)s ligne(s)") % {"n": len(lines)})
    drafts = Invoice.objects.filter(period=period, status=Invoice.Status.DRAFT, kind=Invoice.Kind.INVOICE)
    InvoiceLine.objects.filter(invoice__in=drafts).delete()
    drafts.delete()
    already = issued_pairs(period=period)
    grouped: dict[tuple, list[engine.Line]] = defaultdict(list)
    skipped_pairs = set()
    for line in lines:
        pair = (_line_key(line.debtor), line.stay_id)
        if pair in already:
            skipped_pairs.add(pair)
            continue
        grouped[pair[0]].append(line)
    establishment = section.establishment
    invoices, skipped = [], len(skipped_pairs)
    line_rows = []
    for key in grouped:
        kind, resident_id, relative_id, payer_id, group_id = key
        invoice = Invoice(
            period=period, section=section, establishment=establishment, kind=Invoice.Kind.INVOICE,
            debtor_kind=kind, resident_id=resident_id, relative_id=relative_id, payer_id=payer_id,
            payer_group_id=group_id, date_from=period.start, date_to=period.end)
        total = Decimal("0.00")
        ordered = sorted(grouped[key], key=lambda ln: (names.get(ln.resident_id, ""), ln.resident_id,
                                                       ln.product.code, ln.date_from))
        for position, line in enumerate(ordered):
            amount = line.amount
            total += amount
            line_rows.append((invoice, dict(  # plain values: no model instance per line (insert_values)
                resident_id=line.resident_id, stay_id=line.stay_id, product_id=line.product.pk,
                label=line_label(line, resident_name=names.get(line.resident_id, ""), for_payer=kind == "payer",
                                 payer_note=line.note),
                reason=line.reason, date_from=line.date_from, date_to=line.date_to,
                quantity=line.quantity.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP),  # shown; amount is exact
                unit_price=line.unit_price, amount=amount, vat_rate=_vat_rate(line.product, establishment),
                position=position)))
        invoice.total = round_money(total)
        invoices.append(invoice)
    Invoice.objects.bulk_create(invoices, batch_size=1000)
    for invoice, row in line_rows:
        row["invoice_id"] = invoice.pk  # set after the invoices got their primary keys
    insert_values(InvoiceLine, [row for _invoice, row in line_rows])  # one COPY on PostgreSQL
    period.generated_at = timezone.now()
    period.drafts_stale_since = None
    period.save(update_fields=["generated_at", "drafts_stale_since"])
    if progress:
        progress(3, 3, _("%(n)s facture(s) brouillon") % {"n": len(invoices)})
    return {"drafts": len(invoices), "lines": len(line_rows), "skipped_issued": skipped,
            "warnings": sorted(set(warnings))[:200],
            "total": str(sum((i.total for i in invoices), Decimal("0.00")))}


def _vat_rate(product: Product, establishment) -> Decimal:
    if establishment.legal_status == "commercial":
        return product.vat_rate
    return Decimal("0")


def _line_key(debtor: engine.Debtor) -> tuple:
    if debtor.kind == "payer":
        return ("payer", None, None, debtor.payer_id, debtor.group_id)
    return (debtor.kind, debtor.resident_id, debtor.relative_id, None, None)


def _invoice_key_of(invoice: Invoice) -> tuple:
    if invoice.debtor_kind == "payer":
        return ("payer", None, None, invoice.payer_id, invoice.payer_group_id)
    return (invoice.debtor_kind, invoice.resident_id, invoice.relative_id, None, None)


def period_generate_job(*, job, progress) -> dict:
    """Job runner: params {"period_id": …}."""
    from core.services.jobs import JobError

    period = BillingPeriod.objects.filter(pk=job.params.get("period_id")).first()
    if period is None:
        raise JobError(_("Période introuvable."))
    progress(0, 3, _("Chargement des séjours"))
    try:
        return period_generate(period=period, progress=progress)
    except ValidationError as exc:
        raise JobError(" ".join(exc.messages)) from exc
