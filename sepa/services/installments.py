"""Installment plans — *mensualisation* (billing-rules.md §11, seed 004).

A resident « utilise la mensualisation »: a yearly amount is spread over N monthly installments
debited on a fixed day (the section's settings give N, the day and the texts of the schedule). The
rounding goes on the last installment (``spread``). Postponing an installment recomputes at once the
amounts of the installments still open (neither collected, nor in a debit batch): what is left of
the yearly amount is spread over them; postponing the last open one moves its amount to a new
installment one month later. Each due installment is collected by the monthly debit batch
(``sepa.services.debits``); when the batch is settled it becomes a *prélèvement* payment of the
debtor, allocated by the payments rules (§9: oldest due first, the rest a credit). The monthly
invoices of a mensualised resident are not collected directly; the *régularisation* compares the
installments received with what was invoiced over the plan year. An installment the bank rejected or
returned is either spread over the open ones (« Recalculer ») or re-presented as such
(``installment_represent``: due again, its amount kept, a new end-to-end id in the next batch)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, Sum
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import Invoice, Package, Product, StayPackage, Tariff
from billing.models.catalog import LODGING_KINDS
from billing.services.payments import Debtor
from core.audit import log_changes_bulk
from core.formats import fr_date
from core.money import CENT, ZERO, format_euros, round_money
from residents.models import Stay

from ..models import DebitLine, Installment, InstallmentPlan, InstallmentSettings, Mandate
from .mandates import add_months, mandate_usable
from .returns import reason_label

DAYS_PER_YEAR = 365
MONTHS_PER_YEAR = 12


# ------------------------------------------------------------------ settings

def installment_settings(section) -> InstallmentSettings:
    """The section's settings (the French defaults when never saved)."""
    return InstallmentSettings.objects.filter(section=section).first() or InstallmentSettings(section=section)


def installment_settings_save(*, section, installment_count, debit_day, title: str, header_text: str,
                              footer_text: str) -> InstallmentSettings:
    current = installment_settings(section)
    current.installment_count, current.debit_day = installment_count, debit_day
    current.title, current.header_text, current.footer_text = title.strip(), header_text.strip(), footer_text.strip()
    current.full_clean()
    current.save()
    return current


# ------------------------------------------------------------------ amounts

def spread(total: Decimal, parts: int) -> list[Decimal]:
    """``total`` in ``parts`` equal installments rounded to the cent, the rounding on the last one:
    100 € in 9 → 11,11 × 8 + 11,12. The last one is never negative (tiny totals round down)."""
    total = round_money(total)
    if parts < 1:
        return []
    base = round_money(total / parts)
    if base * (parts - 1) > total:
        base = (total / parts).quantize(CENT, rounding=ROUND_DOWN)
    return [base] * (parts - 1) + [total - base * (parts - 1)]


def _price_on(product: Product, day: date) -> Decimal | None:
    tariff = Tariff.objects.filter(product=product, valid_from__lte=day).order_by("-valid_from").first()
    return tariff.price if tariff else None


def yearly_amount_estimate(*, section, resident, on: date | None = None) -> tuple[Decimal, str]:
    """A simple, stated estimate from the tariffs in force on ``on`` for the resident's stay: the
    daily accommodation price(s) of the stay's package × 365 (a monthly one × 12), plus the dependency
    *ticket modérateur* (the GIR 5-6 tariff, the « talon ») × 365 when the package bills dependency by
    GIR. Absences, social aid, APA of another département and extras are not estimated."""
    on = on or timezone.localdate()
    stay = (Stay.objects.filter(resident=resident, section=section, entry_date__lte=on)
            .filter(Q(end_date__isnull=True) | Q(end_date__gte=on)).order_by("-entry_date").first())
    if stay is None:
        raise ValidationError(_("%(name)s n'a pas de séjour en cours dans cette section le %(date)s : saisissez "
                                "le montant annuel.") % {"name": resident.full_name, "date": fr_date(on)})
    assignment = (StayPackage.objects.filter(stay=stay, valid_from__lte=on).select_related("package")
                  .order_by("-valid_from").first())
    if assignment is None:
        raise ValidationError(_("Le séjour de %(name)s n'a pas de forfait d'hébergement : saisissez le montant "
                                "annuel.") % {"name": resident.full_name})
    package: Package = assignment.package
    total, parts = ZERO, []
    for product in package.products.filter(kind__in=LODGING_KINDS).order_by("code"):
        price = _price_on(product, on)
        if price is None:
            continue
        factor = MONTHS_PER_YEAR if product.unit == Product.Unit.MONTH else DAYS_PER_YEAR
        total += round_money(price * factor)
        parts.append(_("%(label)s %(price)s × %(n)s") % {"label": product.label, "price": format_euros(price),
                                                         "n": factor})
    if package.dependency_by_gir:
        talon = Product.objects.filter(establishment_id=section.establishment_id,
                                       kind=Product.Kind.DEPENDENCY_56).order_by("code").first()
        price = _price_on(talon, on) if talon else None
        if price is not None:
            total += round_money(price * DAYS_PER_YEAR)
            parts.append(_("ticket modérateur dépendance %(price)s × %(n)s") % {"price": format_euros(price),
                                                                              "n": DAYS_PER_YEAR})
    if total <= ZERO:
        raise ValidationError(_("Aucun tarif d'hébergement en vigueur le %(date)s pour le forfait %(code)s : saisissez "
                                "le montant annuel.") % {"date": fr_date(on), "code": package.code})
    note = _("Estimation au %(date)s : %(parts)s = %(total)s") % {"date": fr_date(on), "parts": " + ".join(parts),
                                                                  "total": format_euros(total)}
    return total, note[:250]


# ------------------------------------------------------------------ plans

def plan_debtor(plan: InstallmentPlan) -> Debtor:
    if plan.relative_id:
        return Debtor(plan.section_id, Invoice.DebtorKind.RELATIVE, resident_id=plan.resident_id,
                      relative_id=plan.relative_id)
    return Debtor(plan.section_id, Invoice.DebtorKind.RESIDENT, resident_id=plan.resident_id)


def plan_year_end(plan: InstallmentPlan) -> date:
    return add_months(plan.year_start, MONTHS_PER_YEAR) - timedelta(days=1)


def _due_date(first_month: date, index: int, day: int) -> date:
    month = add_months(first_month.replace(day=1), index)
    return month.replace(day=day)


def _amount(value) -> Decimal:
    try:
        amount = round_money(value)
    except ValueError:
        raise ValidationError({"yearly_amount": _("Montant annuel invalide : « %(value)s ».") % {"value": value}}) from None
    if amount <= ZERO:
        raise ValidationError({"yearly_amount": _("Le montant annuel doit être positif (%(value)s).") % {"value": value}})
    return amount


def _actor(user):
    return user if (user and user.is_authenticated) else None


@transaction.atomic
def plan_create(*, section, resident, yearly_amount, first_month: date, relative=None, installment_count=None,
                debit_day=None, estimate_note: str = "", user=None) -> InstallmentPlan:
    """« Utiliser la mensualisation »: the schedule of ``installment_count`` monthly installments from
    ``first_month`` on the debit day (the section's settings by default), the rounding on the last."""
    amount = _amount(yearly_amount)
    current = installment_settings(section)
    count = installment_count or current.installment_count
    day = debit_day or current.debit_day
    if not 1 <= count <= 12:
        raise ValidationError({"installment_count": _("Nombre d'échéances invalide : %(value)s (de 1 à 12).")
                               % {"value": count}})
    if not 1 <= day <= 28:
        raise ValidationError({"debit_day": _("Jour de prélèvement invalide : %(value)s (du 1 au 28).") % {"value": day}})
    if relative is not None and relative.resident_id != resident.pk:
        raise ValidationError({"relative": _("Ce proche n'est pas rattaché à ce résident.")})
    if not Stay.objects.filter(resident=resident, section=section).exists():
        raise ValidationError(_("%(name)s n'a aucun séjour dans cette section.") % {"name": resident.full_name})
    if InstallmentPlan.objects.select_for_update().filter(section=section, resident=resident,
                                                          status=InstallmentPlan.Status.ACTIVE).exists():
        raise ValidationError(_("%(name)s a déjà un échéancier en cours : arrêtez-le avant d'en créer un autre.")
                              % {"name": resident.full_name})
    plan = InstallmentPlan.objects.create(
        section=section, resident=resident, relative=relative, year_start=first_month.replace(day=1),
        yearly_amount=amount, installment_count=count, debit_day=day, estimate_note=estimate_note[:250],
        created_by=_actor(user))
    Installment.objects.bulk_create([
        Installment(plan=plan, number=index + 1, due_date=_due_date(first_month, index, day), amount=part)
        for index, part in enumerate(spread(amount, count))])
    return plan


def _in_batch_ids(plan: InstallmentPlan) -> set[int]:
    return set(DebitLine.objects.filter(installment__plan=plan, active=True, return_code="")
               .values_list("installment_id", flat=True))


def _represented(installment: Installment) -> bool:
    """Due again after a return (« Représenter »): presented as such, its amount is never recomputed."""
    return installment.state == Installment.State.DUE and installment.representations > 0


def _recompute(plan: InstallmentPlan, *, append_after: Installment | None = None) -> list[Installment]:
    """Spread what is left of the yearly amount (less the installments collected, in a batch or
    re-presented) over the open installments; with none open, ``append_after`` adds one a month after
    the last."""
    installments = list(plan.installments.select_for_update().order_by("number"))
    in_batch = _in_batch_ids(plan)
    kept = [i for i in installments if i.state == Installment.State.COLLECTED
            or (i.state == Installment.State.DUE and (i.pk in in_batch or _represented(i)))]
    fixed = sum((i.amount for i in kept), ZERO)
    open_ = [i for i in installments if i.state == Installment.State.DUE and i not in kept]
    left = max(plan.yearly_amount - fixed, ZERO)
    if not open_ and append_after is not None and left > ZERO:
        last = installments[-1]
        open_ = [Installment.objects.create(plan=plan, number=last.number + 1, amount=left,
                                            due_date=add_months(max(i.due_date for i in installments), 1)
                                            .replace(day=plan.debit_day))]
    for installment, amount in zip(open_, spread(left, len(open_))):
        if installment.amount != amount:
            installment.amount = amount
            installment.save(update_fields=["amount"])
    return open_


def _check_writable(plan: InstallmentPlan) -> None:
    if plan.status != InstallmentPlan.Status.ACTIVE:
        raise ValidationError(_("L'échéancier de %(name)s est arrêté.") % {"name": plan.resident.full_name})


@transaction.atomic
def installment_postpone(*, installment: Installment, on: date | None = None) -> InstallmentPlan:
    """« Annuler l'échéance et recalculer l'échéancier »: the installment is *reportée*, the open ones
    share at once what is left of the yearly amount (seed 004: 100 € in 10, one postponed → 11,11 × 8
    + 11,12)."""
    plan = InstallmentPlan.objects.select_for_update().get(pk=installment.plan_id)
    _check_writable(plan)
    installment = Installment.objects.select_for_update().get(pk=installment.pk)
    if installment.state != Installment.State.DUE:
        raise ValidationError(_("L'échéance n° %(n)s est %(state)s : seule une échéance à venir peut être reportée.")
                              % {"n": installment.number, "state": installment.get_state_display().lower()})
    if DebitLine.objects.filter(installment=installment, active=True, return_code="").exists():
        raise ValidationError(_("L'échéance n° %(n)s est déjà dans un lot de prélèvements : annulez le lot avant de "
                                "la reporter.") % {"n": installment.number})
    installment.state, installment.postponed_on = Installment.State.POSTPONED, on or timezone.localdate()
    installment.save(update_fields=["state", "postponed_on"])
    _recompute(plan, append_after=installment)
    return plan


@transaction.atomic
def installment_represent(*, installment: Installment, user=None, on: date | None = None) -> Installment:
    """« Représenter » an installment the bank rejected or returned (e.g. AM04, provision insuffisante):
    it is due again with its amount and the next debit batch collects it as its own transaction (a new
    end-to-end id ``…-R<k>``; the sequence type is the mandate's, RCUR once a batch was sent). Once
    per return: presented again, it can be re-presented only if it comes back again. Refused when the
    debtor has no active mandate (revoked, lapsed, suspended after the reject) and after a refund the
    debtor asked for (MD06: he contests it, another payment is agreed with him). The open installments
    are recomputed: if « Recalculer » had spread the rejected amount over them, it comes off again.
    The change is written to the audit log with ``user``."""
    plan = (InstallmentPlan.objects.select_for_update(of=("self",))  # the relative: outer join, not locked
            .select_related("resident", "relative", "section").get(pk=installment.plan_id))
    _check_writable(plan)
    installment = Installment.objects.select_for_update().get(pk=installment.pk)
    if _represented(installment):
        raise ValidationError(_("L'échéance n° %(n)s a déjà été représentée le %(date)s : le prochain lot de "
                                "prélèvements la prélève.") % {"n": installment.number,
                                                                "date": fr_date(installment.represented_on)})
    if installment.state != Installment.State.REJECTED:
        raise ValidationError(_("L'échéance n° %(n)s est %(state)s : seule une échéance rejetée ou retournée par la "
                                "banque peut être représentée.") % {
            "n": installment.number, "state": installment.get_state_display().lower()})
    last_return = (DebitLine.objects.filter(installment=installment, active=True).exclude(return_code="")
                   .order_by("-pk").values_list("return_code", flat=True).first())
    if last_return == "MD06":
        raise ValidationError(_("L'échéance n° %(n)s a été remboursée au débiteur à sa demande (MD06) : elle n'est "
                                "pas représentée ; convenez avec lui d'un autre règlement.")
                              % {"n": installment.number})
    debtor = str(plan.relative or plan.resident)
    mandate, reason = mandate_usable(list(Mandate.objects.filter(
        establishment_id=plan.section.establishment_id, resident_id=plan.resident_id,
        relative_id=plan.relative_id).order_by("-pk")))
    if mandate is None:
        raise ValidationError(_("L'échéance n° %(n)s ne peut pas être représentée : %(reason)s Il faut un mandat "
                                "actif de %(debtor)s.") % {"n": installment.number, "debtor": debtor,
                                                            "reason": reason[:1].lower() + reason[1:]})
    before = (installment.state, installment.representations, installment.represented_on)
    installment.state, installment.representations = Installment.State.DUE, installment.representations + 1
    installment.represented_on = on or timezone.localdate()
    Installment.objects.filter(pk=installment.pk).update(
        state=installment.state, representations=installment.representations,
        represented_on=installment.represented_on)
    log_changes_bulk(Installment, [(installment.pk, str(installment), {
        "state": [before[0], installment.state], "representations": [str(before[1]), str(installment.representations)],
        "represented_on": [str(before[2]), str(installment.represented_on)]})], actor=_actor(user))
    _recompute(plan)
    return installment


@transaction.atomic
def plan_recompute(*, plan: InstallmentPlan) -> InstallmentPlan:
    """Spread again what is left (e.g. after a rejected installment) over the open installments."""
    plan = InstallmentPlan.objects.select_for_update().get(pk=plan.pk)
    _check_writable(plan)
    if not _recompute(plan):
        raise ValidationError(_("Aucune échéance à venir à recalculer."))
    return plan


@transaction.atomic
def plan_amount_change(*, plan: InstallmentPlan, yearly_amount) -> InstallmentPlan:
    plan = InstallmentPlan.objects.select_for_update().get(pk=plan.pk)
    _check_writable(plan)
    plan.yearly_amount = _amount(yearly_amount)
    plan.save(update_fields=["yearly_amount"])
    _recompute(plan)
    return plan


@transaction.atomic
def plan_stop(*, plan: InstallmentPlan, on: date | None = None) -> InstallmentPlan:
    """Arrêt de la mensualisation: the open installments are cancelled (those already in a batch are
    still collected); the next monthly invoices are collected directly again."""
    plan = InstallmentPlan.objects.select_for_update().get(pk=plan.pk)
    _check_writable(plan)
    in_batch = _in_batch_ids(plan)
    plan.installments.filter(state=Installment.State.DUE).exclude(pk__in=in_batch).update(
        state=Installment.State.CANCELLED)
    plan.status, plan.stopped_on = InstallmentPlan.Status.STOPPED, on or timezone.localdate()
    plan.save(update_fields=["status", "stopped_on"])
    return plan


def plan_installments(plan: InstallmentPlan) -> list[Installment]:
    """The plan's installments for its page, each with ``in_batch`` (in a batch, not returned) and
    ``last_return`` (the code and French reason of its last reject or return, or None): two queries."""
    installments = list(plan.installments.order_by("number"))
    in_batch = _in_batch_ids(plan)
    returns = dict(DebitLine.objects.filter(installment__plan=plan, active=True).exclude(return_code="")
                   .order_by("pk").values_list("installment_id", "return_code"))  # the last one wins
    for installment in installments:
        installment.in_batch = installment.pk in in_batch
        code = returns.get(installment.pk)
        installment.last_return = f"{code} : {reason_label(code)}" if code else None
    return installments


def installment_label(installment: Installment, count: int | None = None) -> str:
    count = count or installment.plan.installments.exclude(state=Installment.State.CANCELLED).count()
    return _("échéance %(n)s/%(count)s") % {"n": installment.number, "count": count}


# ------------------------------------------------------------------ régularisation

@dataclass
class Regularisation:
    plan: InstallmentPlan
    start: date
    end: date
    received: Decimal
    invoiced: Decimal
    to_come: Decimal
    rejected: Decimal

    @property
    def difference(self) -> Decimal:
        """Installments received − invoiced: > 0 a surplus (credit), < 0 still owed."""
        return self.received - self.invoiced


def _regularisations(plans: list[InstallmentPlan], *, until: date | None = None) -> list[Regularisation]:
    """Two queries for any number of plans: installment sums per plan and state, then the issued
    invoices of the plans' debtors for their residents, summed per plan over its year."""
    if not plans:
        return []
    states: dict[tuple[int, str], Decimal] = {
        (plan_id, state): total for plan_id, state, total in Installment.objects.filter(plan__in=plans)
        .values("plan_id", "state").annotate(s=Sum("amount")).values_list("plan_id", "state", "s")}
    ends = {plan.pk: min(plan_year_end(plan), until) if until else plan_year_end(plan) for plan in plans}
    invoiced: dict[tuple, list[tuple[date, Decimal]]] = {}
    for section_id, kind, resident_id, relative_id, day, total in Invoice.objects.filter(
            section_id__in={p.section_id for p in plans}, resident_id__in={p.resident_id for p in plans},
            debtor_kind__in=(Invoice.DebtorKind.RESIDENT, Invoice.DebtorKind.RELATIVE),
            date_from__gte=min(p.year_start for p in plans), date_from__lte=max(ends.values())).exclude(
            status=Invoice.Status.DRAFT).values_list("section_id", "debtor_kind", "resident_id", "relative_id", "date_from",
                                                 "total"):
        key = (section_id, resident_id, relative_id if kind == Invoice.DebtorKind.RELATIVE else None)
        invoiced.setdefault(key, []).append((day, total))
    rows = []
    for plan in plans:
        end = ends[plan.pk]
        billed = sum((total for day, total in invoiced.get((plan.section_id, plan.resident_id, plan.relative_id), ())
                      if plan.year_start <= day <= end), ZERO)
        rows.append(Regularisation(
            plan=plan, start=plan.year_start, end=end, invoiced=round_money(billed),
            received=round_money(states.get((plan.pk, Installment.State.COLLECTED)) or ZERO),
            to_come=round_money(states.get((plan.pk, Installment.State.DUE)) or ZERO),
            rejected=round_money(states.get((plan.pk, Installment.State.REJECTED)) or ZERO)))
    return rows


def plan_regularisation(plan: InstallmentPlan, *, until: date | None = None) -> Regularisation:
    """Installments received (collected, not rejected) against what was invoiced to the debtor for
    the resident (invoices and rappels less credit notes, cancelled ones netting with their credit
    note) over the plan year — or up to ``until``."""
    return _regularisations([plan], until=until)[0]


def regularisations(*, section, year: int) -> list[Regularisation]:
    """« Régularisation de l'échéancier »: the plans of the section starting in ``year``."""
    plans = list(InstallmentPlan.objects.filter(section=section, year_start__year=year)
                 .select_related("resident", "relative").order_by("resident__last_name", "resident__first_name", "pk"))
    return _regularisations(plans)


def resident_account_panel(*, section, resident, user=None) -> str:
    """The *Compte* tab of a mensualised resident: installments received against invoices (to date)."""
    plans = list(InstallmentPlan.objects.filter(section=section, resident=resident).order_by("-year_start", "-pk")[:2])
    plan = next((p for p in plans if p.status == InstallmentPlan.Status.ACTIVE), plans[0] if plans else None)
    if plan is None:
        return ""
    return render_to_string("sepa/_account_installments.html", {"section": section, "panel": {
        "plan": plan, "regularisation": plan_regularisation(plan, until=timezone.localdate())}})
