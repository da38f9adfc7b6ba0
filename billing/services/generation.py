"""Period generation: load a section's data in a bounded number of queries, run the engine,
replace the period's draft invoices (issued ones are never touched)."""
from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.db import copy_insert, insert_values
from core.money import round_money
from core.formats import fr_date
from payers.models import AidPlan

from ..models import BillingPeriod, DepartementParameter, Invoice, InvoiceLine, NationalParameter, Product
from ..models.catalog import DEPENDENCY_KINDS
from . import engine, social_aid
from .calendars import french_holidays
from .dated import Dated
from .period_data import PeriodData

REASON_SUFFIX = {
    "absence_hospital": _("absence hospitalisation (à partir du 4e jour)"),
    "absence_psy": _("absence hospitalisation psychiatrique (à partir du 4e jour)"),
    "absence_convenience": _("absence pour convenance (à partir du 4e jour)"),
    "absence_convenience_cap": _("absence pour convenance au-delà du plafond annuel"),
    "after_death": _("après décès, effets dans la chambre"),
    "ash_contribution": _("participation du résident (aide sociale : ressources moins argent de poche)"),
}
def load_context(*, section, start: date, end: date, data: PeriodData | None = None) -> engine.Context:
    """The engine's context of the section over [start, end] (``data``: rows already read for the period)."""
    data = data or PeriodData(section=section, start=start, end=end)
    establishment = section.establishment
    calendar = data.calendar
    if calendar is None:
        raise ValidationError(_("Aucun calendrier n'est rattaché à la section %(alias)s.") % {"alias": section.alias})
    missing = data.calendar_missing_days
    if missing:
        shown = ", ".join(fr_date(d) for d in missing[:5]) + (" …" if len(missing) > 5 else "")
        raise ValidationError(_(
            "Le calendrier %(code)s n'a pas été généré pour la période (%(count)s jour(s) manquant(s) : %(days)s) — "
            "génération impossible. Prolongez le calendrier existant (Calendriers → Générer une année).") % {
            "code": calendar.code, "count": len(missing), "days": shown})
    national = data.national
    dept_rows = data.departement_parameters
    return engine.Context(
        establishment_departement=establishment.departement,
        apa_dotation=data.apa_dotation,
        tariffs={pid: Dated(rows) for pid, rows in data.tariffs.items()},
        calendar=data.calendar_days,
        holidays=frozenset(french_holidays(years=list(range(start.year, end.year + 1)),
                                           departement=establishment.departement)),
        products_by_kind={p.kind: p for p in data.products.values() if p.kind in DEPENDENCY_KINDS},
        hospital_charge=Dated(national[NationalParameter.Kind.HOSPITAL_DAILY_CHARGE]),
        psychiatric_charge=Dated(national[NationalParameter.Kind.PSYCHIATRIC_DAILY_CHARGE]),
        pocket_money_minimum=Dated(national[NationalParameter.Kind.POCKET_MONEY_MINIMUM]),
        departement=Dated(dept_rows) if dept_rows else Dated([(date(2000, 1, 1),
                                                              DepartementParameter.default(establishment.departement))]),
    )


def load_stays(*, section, start: date, end: date, stay_pks=None, data: PeriodData | None = None
               ) -> list[engine.StayData]:
    """The engine's data of the section's stays over [start, end] (``stay_pks``: only those stays;
    ``data``: rows already read for the period)."""
    data = data or PeriodData(section=section, start=start, end=end, stay_pks=stay_pks)
    packages = defaultdict(list)
    package_data = data.packages
    for stay_id, rows in data.package_assignments.items():
        packages[stay_id] = [(valid_from, package_data[package_id]) for valid_from, package_id in rows]
    absences = defaultdict(list)
    convenience = defaultdict(lambda: defaultdict(list))
    for resident_id, first_day, last_day, rule in data.absences:
        info = engine.AbsenceInfo(first_day, last_day, rule)
        absences[resident_id].append(info)
        if rule == "CONVENIENCE":
            day = first_day
            while day <= last_day:
                convenience[resident_id][day.year].append(day)
                day += timedelta(days=1)
    rules = defaultdict(list)
    for rule in data.coverage_rules:
        rules[rule.stay_id].append(engine.CoverageRuleData(
            rule_id=rule.pk, payer_id=rule.payer_id, group_id=rule.group_id, scope=rule.scope,
            product_ids=rule.product_ids, mode=rule.mode, value=rule.value,
            monthly_cap_units=rule.monthly_cap_units, valid_from=rule.valid_from, valid_to=rule.valid_to,
            invoiced=rule.invoiced and not (rule.mode == "above_talon" and rule.payer.apa_dotation_globale),
            label=rule.group.label if rule.group else rule.payer.name))
    decisions = defaultdict(list)
    for d in data.social_aid_decisions:
        decisions[d.stay_id].append(social_aid.DecisionData(
            payer_id=d.payer_id, group_id=d.group_id, valid_from=d.valid_from, valid_to=d.valid_to,
            resources=d.monthly_resources, housing_allowance=d.housing_allowance,
            minimum=d.pocket_money_minimum if d.pocket_money_minimum is not None else d.payer.pocket_money_minimum,
            label=d.group.label if d.group else d.payer.name))
    plans = defaultdict(list)
    for plan in data.aid_plans:
        plans[plan.stay_id].append(_aid_plan_data(plan))
    paying = {resident_id: next((r.pk for r in rows if r.is_payer), None)
              for resident_id, rows in data.relatives.items()}
    girs = data.girs
    return [engine.StayData(
        stay_id=s.pk, resident_id=s.resident_id, resident_name=s.resident.full_name,
        entry_date=s.entry_date, end_date=s.end_date, end_reason=s.end_reason, room_emptied_on=s.room_emptied_on,
        packages=Dated(packages[s.pk]), gir=Dated(girs[s.resident_id]), absences=absences[s.resident_id],
        convenience_days_by_year=convenience[s.resident_id], rules=rules[s.pk],
        paying_relative_id=paying.get(s.resident_id), birth_date=s.resident.birth_date,
        attendance=s.attendance_weekday_set, social_aid=decisions[s.pk],
        domicile_secours=s.resident.domicile_secours, aid_plans=plans[s.pk]) for s in data.stays]


def _aid_plan_data(plan: AidPlan) -> engine.AidPlanData:
    return engine.AidPlanData(
        plan_id=plan.pk, payer_id=plan.payer_id, group_id=plan.group_id, product_id=plan.product_id,
        valid_from=plan.valid_from, valid_to=plan.valid_to, rate=plan.rate, percent=plan.coverage_percent,
        monthly_cap=plan.monthly_cap_units, holiday_rate=plan.holiday_rate,
        holiday_percent=plan.holiday_coverage_percent, holiday_cap=plan.holiday_cap_units,
        plan_rate_billing=plan.billing_mode == AidPlan.BillingMode.PLAN_RATE,
        label=plan.group.label if plan.group else plan.payer.name)


def compute_period(*, section, start: date, end: date, data: PeriodData | None = None
                   ) -> tuple[list[engine.Line], list[str], dict]:
    """The engine's lines of the section over [start, end] (``data``: rows already read, e.g. by the
    pre-flight checks of the same job)."""
    data = data or PeriodData(section=section, start=start, end=end)
    ctx = load_context(section=section, start=start, end=end, data=data)
    stays = load_stays(section=section, start=start, end=end, data=data)
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


def period_lock(period: BillingPeriod) -> BillingPeriod:
    """The period's row, locked until the end of the transaction (generation, régularisation and
    statements of one period run one after the other). ``of=self``: never lock the section and
    establishment rows that the other sections share."""
    return BillingPeriod.objects.select_for_update(of=("self",)).select_related("section__establishment").get(
        pk=period.pk)


@transaction.atomic
def period_generate(*, period: BillingPeriod, progress=None, data: PeriodData | None = None) -> dict:
    """Replace the period's draft invoices with freshly computed ones. Issued invoices are kept; a
    (debtor, stay) pair that already has issued lines in the period gets no draft line — what changed
    for it since is a régularisation (``regularisation.period_regularisations``), so a day is never
    billed twice to the same debtor and a new share is never dropped."""
    from .regularisation import issued_pairs

    period = period_lock(period)  # ``data``, if given, was read after this lock, in this transaction
    if period.status != BillingPeriod.Status.OPEN:
        raise ValidationError(_("La période %(label)s est clôturée.") % {"label": period.label})
    section = period.section
    if data is not None and (data.section.pk, data.start, data.end) != (section.pk, period.start, period.end):
        raise ValueError("period_generate: the data read is not the period's")
    lines, warnings, names = compute_period(section=section, start=period.start, end=period.end, data=data)
    if progress:
        progress(1, 3, _("Calcul terminé : %(n)s ligne(s)") % {"n": len(lines)})
    drafts = Invoice.objects.filter(period=period, status=Invoice.Status.DRAFT, kind=Invoice.Kind.INVOICE)
    if drafts.exists():  # a first generation has none: one query instead of the deletions' four
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
    copy_insert(Invoice, invoices, with_pks=True)  # one COPY on PostgreSQL; the invoices get their keys
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
