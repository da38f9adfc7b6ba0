"""Returns and rejects of direct debits (R-transactions, billing-rules.md §11): pain.002 (.001.03,
.001.10) and camt.054 files. Each line is matched on the end-to-end id of a debit line; the payment
is reversed by negative entries (``payments_cancel_many``, in bulk), the invoice is unpaid again, the mandate
action of §11 is applied. A line already returned is skipped: importing a file twice changes nothing.
A file that cannot be read is refused whole with a French report."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.utils import timezone
from lxml import etree

from billing.services.payments import payments_cancel_many

from ..models import DebitLine, Installment, Mandate

REASONS = {
    "AC01": gettext_lazy("Numéro de compte erroné"),
    "AC04": gettext_lazy("Compte clôturé"),
    "AC06": gettext_lazy("Compte bloqué"),
    "AG01": gettext_lazy("Prélèvement interdit sur ce compte"),
    "AG02": gettext_lazy("Code opération invalide"),
    "AM04": gettext_lazy("Provision insuffisante"),
    "AM05": gettext_lazy("Prélèvement en double"),
    "BE05": gettext_lazy("Créancier inconnu du débiteur"),
    "FF01": gettext_lazy("Fichier ou opération invalide"),
    "MD01": gettext_lazy("Pas de mandat ou mandat invalide"),
    "MD02": gettext_lazy("Données du mandat manquantes ou erronées"),
    "MD06": gettext_lazy("Remboursement demandé par le débiteur (8 semaines)"),
    "MD07": gettext_lazy("Débiteur décédé"),
    "MS02": gettext_lazy("Refus du débiteur (raison non communiquée)"),
    "MS03": gettext_lazy("Raison non communiquée par la banque"),
    "RC01": gettext_lazy("BIC erroné"),
    "RR01": gettext_lazy("Identification du compte du débiteur manquante"),
    "SL01": gettext_lazy("Service spécifique de la banque du débiteur (opposition)"),
}
SUSPEND = {"AC01", "AC04", "AC06", "MD01", "MD07", "MS02", "SL01"}


def reason_label(code: str) -> str:
    return str(REASONS.get(code, _("Motif %(code)s") % {"code": code}))


@dataclass
class ReturnLine:
    end_to_end_id: str
    code: str
    amount: Decimal | None = None


@dataclass
class ReturnsReport:
    applied: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    suspended: list[str] = field(default_factory=list)


def _local(element) -> str:
    return etree.QName(element).localname


def _children(element, name):
    return [c for c in element.iter() if isinstance(c.tag, str) and _local(c) == name]


def _text(element, *path) -> str:
    for name in path:
        found = [c for c in element if isinstance(c.tag, str) and _local(c) == name]
        if not found:
            return ""
        element = found[0]
    return (element.text or "").strip()


def returns_parse(content: bytes) -> list[ReturnLine]:
    """pain.002 (rejected transactions) or camt.054 (returned debits); refused whole when unreadable."""
    try:
        root = etree.fromstring(content, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise ValidationError(_("Fichier illisible (XML invalide) : %(error)s") % {"error": exc}) from None
    namespace = etree.QName(root).namespace or ""
    lines = []
    if ":pain.002." in namespace:
        for tx in _children(root, "TxInfAndSts"):
            if _text(tx, "TxSts") not in ("RJCT", ""):
                continue
            e2e, code = _text(tx, "OrgnlEndToEndId"), _text(tx, "StsRsnInf", "Rsn", "Cd")
            if not e2e or not code:
                raise ValidationError(_("Fichier pain.002 incomplet : une transaction rejetée sans référence de bout "
                                        "en bout ou sans motif."))
            amount = _text(tx, "OrgnlTxRef", "Amt", "InstdAmt")
            lines.append(ReturnLine(e2e, code, _decimal(amount)))
    elif ":camt.054." in namespace:
        for tx in _children(root, "TxDtls"):
            code = _text(tx, "RtrInf", "Rsn", "Cd")
            e2e = _text(tx, "Refs", "EndToEndId")
            if not code:
                continue  # a credit or a debit that is not a return
            if not e2e:
                raise ValidationError(_("Fichier camt.054 incomplet : un retour sans référence de bout en bout."))
            lines.append(ReturnLine(e2e, code, _decimal(_text(tx, "Amt"))))
    else:
        raise ValidationError(_("Ce fichier n'est ni un pain.002 ni un camt.054 (espace de noms « %(ns)s »).")
                              % {"ns": namespace})
    return lines


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text) if text else None
    except InvalidOperation:
        raise ValidationError(_("Montant illisible : « %(value)s ».") % {"value": text}) from None


@transaction.atomic
def returns_apply(*, content: bytes, on: date | None = None, user=None) -> ReturnsReport:
    """Applied in bulk (a constant number of queries whatever the file's size): the lines marked,
    their payments cancelled by ``payments_cancel_many``, the mandates of §11 suspended."""
    on = on or timezone.localdate()
    report = ReturnsReport()
    parsed = returns_parse(content)
    lines = {row[1]: list(row) for row in DebitLine.objects.select_for_update(of=("self",)).filter(
        end_to_end_id__in={r.end_to_end_id for r in parsed}, active=True).values_list(
        "pk", "end_to_end_id", "return_code", "payment_id", "payment__cancelled_at", "mandate_id", "mandate__rum",
        "mandate__status", "installment_id")}
    by_code: dict[str, list[int]] = {}
    cancels: dict[int, str] = {}
    suspend: dict[int, str] = {}
    rejected_installments: list[int] = []
    for item in parsed:
        line = lines.get(item.end_to_end_id)
        if line is None:
            report.unmatched.append(item.end_to_end_id)
            continue
        pk, _e2e, return_code, payment_id, payment_cancelled, mandate_id, rum, mandate_status, installment_id = line
        if return_code:
            report.already.append(item.end_to_end_id)
            continue
        line[2] = item.code[:4]  # a second line of the same file for this debit: « déjà traité »
        by_code.setdefault(line[2], []).append(pk)
        if installment_id:  # a mensualisation installment: rejected (not received)
            rejected_installments.append(installment_id)
        if payment_id and not payment_cancelled:
            cancels[payment_id] = _("Prélèvement %(kind)s, motif %(code)s : %(label)s") % {
                "kind": _("remboursé au débiteur") if item.code == "MD06" else _("rejeté"),
                "code": item.code, "label": reason_label(item.code)}
        if item.code in SUSPEND and mandate_status == Mandate.Status.ACTIVE:
            suspend[mandate_id] = rum
        report.applied.append(item.end_to_end_id)
    for code, pks in by_code.items():
        DebitLine.objects.filter(pk__in=pks).update(return_code=code, returned_on=on)
    if rejected_installments:
        Installment.objects.filter(pk__in=rejected_installments).update(state=Installment.State.REJECTED)
    if cancels:
        payments_cancel_many(reasons=cancels, user=user)
    if suspend:
        Mandate.objects.filter(pk__in=list(suspend), status=Mandate.Status.ACTIVE).update(
            status=Mandate.Status.SUSPENDED)
        report.suspended.extend(suspend.values())
    return report
