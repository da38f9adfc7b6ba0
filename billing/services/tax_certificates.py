"""Yearly tax certificate (*attestation fiscale*, billing-rules.md §12).

Per resident and calendar year, in one section:

* **paid**: the allocations *of payments* dated in the year on the resident's invoices (debtor the
  resident or the paying relative; reversals of a cancelled or re-allocated payment count negative;
  credit notes are not money paid). What is paid on an invoice in the year is split between its
  hébergement and dépendance lines pro rata of their amounts: ``round_half_up(paid × H / total)`` and
  ``round_half_up(paid × D / total)`` per invoice; extras (TV, laundry, other products, lines without
  product) are left out; an unallocated credit is not paid.
* **aids**: what payers were invoiced for the resident's stay in the year (lines of issued payer
  invoices and credit notes whose first day is in the year), per payer and nature — APA for the
  dependency products, social aid for the others; APA under *dotation globale* is never invoiced and
  never listed — and the housing allowance recorded on a social-aid decision, for each month of the
  year ``round_half_up(monthly allowance × days of the month under the decision and the stay / days of
  the month)``.
* **net** = hébergement + dépendance paid (CGI art. 199 quindecies: 25 % of it, at most 10 000 € of
  costs per person; care costs are not included).

The text of the certificate is a template per section (``TaxCertificateSettings``, French default) with
``{placeholders}``; the PDF is rendered with WeasyPrint like the invoices. A section's batch is a
``core.Job`` (``billing.tax_certificates``): one merged PDF to print and, optionally, one e-mail per
resident through the outbox (the certificate attached when the message is sent).
"""
from __future__ import annotations

import calendar as pycal
import itertools
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import Q, Sum
from django.template.loader import get_template
from django.utils import timezone
from django.utils.translation import gettext as _

from core.exports import csv_bytes
from core.formats import fr_date
from core.money import ZERO, format_euros, round_money
from mailing.services import placeholders as mail_placeholders
from mailing.services.documents import Attachment, DocumentUnavailable, document_key, register_document
from payers.models import SocialAidDecision
from residents.models import Resident, Stay

from ..models import Invoice, InvoiceLine, PaymentAllocation, TaxCertificateSettings
from ..models.catalog import ACCOMMODATION_SCOPE_KINDS, DEPENDENCY_KINDS
from .issuing import establishment_snapshot
from .payments import PAYABLE_KINDS
from .pdf import html_to_pdf, legal_mention, pdfs_merge

JOB_KIND = "billing.tax_certificates"
DOCUMENT_KIND = "billing.tax_certificate"
CSV_HEADERS = ("REF_EXTERNE", "NOM", "HEBERGEMENT", "DEPENDANCE", "AIDES", "NET")
CGI_STATEMENT = (
    "Les frais de soins ne sont pas compris dans les montants ci-dessus. Les sommes acquittées au titre de la "
    "dépendance et de l'hébergement ouvrent droit, sous conditions, à la réduction d'impôt de l'article 199 "
    "quindecies du code général des impôts : 25 % des dépenses, retenues dans la limite de 10 000 € par personne "
    "hébergée, déduction faite des aides perçues."
)
# The placeholders of the certificate text (name → label); all are filled for every certificate.
BODY_PLACEHOLDERS = {
    "resident": "civilité, prénom et nom du résident",
    "date_naissance": "date de naissance",
    "annee": "année de l'attestation",
    "sejour": "dates du ou des séjours dans l'année",
    "etablissement": "nom de l'établissement",
    "hebergement": "hébergement acquitté",
    "dependance": "dépendance acquittée",
    "aides": "total des aides",
    "net": "montant net (hébergement + dépendance)",
}
PLACEHOLDER = re.compile(r"\{([A-Za-zÀ-ÿ_]+)\}")

mail_placeholders.register_placeholder("annee", label="année de l'attestation fiscale", sample="2026")


# ---------------------------------------------------------------- figures

@dataclass
class Aid:
    label: str
    amount: Decimal


@dataclass
class TaxCertificate:
    section: object
    resident: Resident
    year: int
    accommodation: Decimal = ZERO
    dependency: Decimal = ZERO
    aids: list[Aid] = field(default_factory=list)
    stays: list[tuple[date, date | None]] = field(default_factory=list)

    @property
    def aids_total(self) -> Decimal:
        return sum((a.amount for a in self.aids), ZERO)

    @property
    def net(self) -> Decimal:
        return self.accommodation + self.dependency

    @property
    def is_empty(self) -> bool:
        return self.net == 0 and self.aids_total == 0

    def csv_row(self) -> list:
        return [self.resident.external_ref, self.resident.full_name, self.accommodation, self.dependency,
                self.aids_total, self.net]


def _year_bounds(year: int) -> tuple[date, date]:
    return date(year, 1, 1), date(year, 12, 31)


def _check_year(year) -> int:
    try:
        year = int(year)
    except (TypeError, ValueError) as exc:
        raise ValidationError(_("Année invalide : « %(value)s ».") % {"value": year}) from exc
    if not 2000 <= year <= 2100:
        raise ValidationError(_("Année invalide : « %(value)s ».") % {"value": year})
    return year


def _split(paid: Decimal, accommodation: Decimal, dependency: Decimal, total: Decimal) -> tuple[Decimal, Decimal]:
    if total <= 0 or paid == 0:
        return ZERO, ZERO
    return round_money(paid * accommodation / total), round_money(paid * dependency / total)


def _paid_by_resident(*, section, year: int, resident_ids=None) -> dict[int, tuple[Decimal, Decimal]]:
    """{resident id: (hébergement, dépendance)} paid in the year (four queries for a whole section)."""
    start, end = _year_bounds(year)
    invoices_q = Q(invoice__section=section, invoice__kind__in=PAYABLE_KINDS,
                   invoice__debtor_kind__in=(Invoice.DebtorKind.RESIDENT, Invoice.DebtorKind.RELATIVE))
    if resident_ids is not None:
        invoices_q &= Q(invoice__resident_id__in=list(resident_ids))
    paid = dict(PaymentAllocation.objects.filter(invoices_q, payment__isnull=False, date__gte=start, date__lte=end)
                .values("invoice_id").annotate(s=Sum("amount")).values_list("invoice_id", "s"))
    if not paid:
        return {}
    heads = dict(Invoice.objects.filter(pk__in=list(paid)).values_list("pk", "resident_id"))
    totals = dict(Invoice.objects.filter(pk__in=list(paid)).values_list("pk", "total"))
    parts: dict[int, dict[str, Decimal]] = {}
    for invoice_id, kind, amount in (InvoiceLine.objects.filter(invoice_id__in=list(paid))
                                     .values_list("invoice_id", "product__kind", "amount")):
        key = "acc" if kind in ACCOMMODATION_SCOPE_KINDS else "dep" if kind in DEPENDENCY_KINDS else "extra"
        bucket = parts.setdefault(invoice_id, {"acc": ZERO, "dep": ZERO, "extra": ZERO})
        bucket[key] += amount
    result: dict[int, tuple[Decimal, Decimal]] = {}
    for invoice_id, amount in paid.items():
        bucket = parts.get(invoice_id, {"acc": ZERO, "dep": ZERO})
        acc, dep = _split(round_money(amount or ZERO), bucket["acc"], bucket["dep"], totals[invoice_id])
        previous = result.get(heads[invoice_id], (ZERO, ZERO))
        result[heads[invoice_id]] = (previous[0] + acc, previous[1] + dep)
    return result


def _payer_aids(*, section, year: int, resident_ids=None) -> dict[int, list[Aid]]:
    """{resident id: [Aid]} invoiced to payers for the resident's stay days of the year."""
    start, end = _year_bounds(year)
    lines = (InvoiceLine.objects.filter(invoice__section=section, invoice__debtor_kind=Invoice.DebtorKind.PAYER,
                                        date_from__gte=start, date_from__lte=end)
             .exclude(invoice__status=Invoice.Status.DRAFT))
    if resident_ids is not None:
        lines = lines.filter(Q(resident_id__in=list(resident_ids))
                             | Q(resident__isnull=True, invoice__resident_id__in=list(resident_ids)))
    sums: dict[tuple[int, str, str], Decimal] = {}
    for resident_id, invoice_resident_id, payer_name, kind, amount in lines.values_list(
            "resident_id", "invoice__resident_id", "invoice__payer__name", "product__kind", "amount"):
        who = resident_id or invoice_resident_id
        if who is None:
            continue
        nature = "apa" if kind in DEPENDENCY_KINDS else "social_aid"
        key = (who, nature, payer_name or "")
        sums[key] = sums.get(key, ZERO) + amount
    result: dict[int, list[Aid]] = {}
    for (who, nature, payer_name), amount in sorted(sums.items(), key=lambda i: (i[0][0], i[0][1], i[0][2])):
        if amount == 0:
            continue
        label = (_("APA — %(payer)s") if nature == "apa" else _("Aide sociale — %(payer)s")) % {"payer": payer_name}
        result.setdefault(who, []).append(Aid(label, round_money(amount)))
    return result


def housing_allowance_in_year(*, decision: SocialAidDecision, stay: Stay, year: int) -> Decimal:
    """The housing allowance of a social-aid decision over the year, month by month, prorated on the
    days of the month under both the decision and the stay."""
    if not decision.housing_allowance:
        return ZERO
    start, end = _year_bounds(year)
    first = max(start, decision.valid_from, stay.entry_date)
    last = min(end, decision.valid_to or end, stay.end_date or end)
    total = ZERO
    for month in range(first.month if first <= last else 13, 13):
        days_in_month = pycal.monthrange(year, month)[1]
        m_first, m_last = max(first, date(year, month, 1)), min(last, date(year, month, days_in_month))
        if m_first > m_last:
            continue
        days = (m_last - m_first).days + 1
        total += (round_money(decision.housing_allowance) if days == days_in_month else
                  round_money(decision.housing_allowance * Decimal(days) / Decimal(days_in_month)))
    return total


def _stays(*, section, year: int, resident_ids=None):
    start, end = _year_bounds(year)
    stays = (Stay.objects.filter(section=section, entry_date__lte=end)
             .filter(Q(end_date__isnull=True) | Q(end_date__gte=start))
             .select_related("resident").order_by("resident__last_name", "resident__first_name", "entry_date"))
    if resident_ids is not None:
        stays = stays.filter(resident_id__in=list(resident_ids))
    return list(stays)


def tax_certificates_compute(*, section, year, resident_ids=None, include_empty: bool = False
                             ) -> list[TaxCertificate]:
    """The certificates of the section's residents with a stay in the year (sorted by name). Residents
    with nothing paid and no aid are left out unless ``include_empty``."""
    year = _check_year(year)
    stays = _stays(section=section, year=year, resident_ids=resident_ids)
    ids = {s.resident_id for s in stays}
    paid = _paid_by_resident(section=section, year=year, resident_ids=ids)
    aids = _payer_aids(section=section, year=year, resident_ids=ids)
    decisions: dict[int, list] = {}
    for decision in (SocialAidDecision.objects.filter(stay__in=[s.pk for s in stays]).select_related("payer")
                     .order_by("valid_from", "pk")):
        decisions.setdefault(decision.stay_id, []).append(decision)
    certificates: dict[int, TaxCertificate] = {}
    for stay in stays:
        cert = certificates.get(stay.resident_id)
        if cert is None:
            acc, dep = paid.get(stay.resident_id, (ZERO, ZERO))
            cert = certificates[stay.resident_id] = TaxCertificate(
                section, stay.resident, year, acc, dep, list(aids.get(stay.resident_id, [])))
        cert.stays.append((stay.entry_date, stay.end_date))
        for decision in decisions.get(stay.pk, []):
            amount = housing_allowance_in_year(decision=decision, stay=stay, year=year)
            if amount:
                cert.aids.append(Aid(_("Allocation logement (décision d'aide sociale %(ref)s)") % {
                    "ref": decision.decision_reference or decision.payer.name}, amount))
    result = [c for c in certificates.values() if include_empty or not c.is_empty]
    from core.text import text_key

    result.sort(key=lambda c: (text_key(c.resident.last_name), text_key(c.resident.first_name), c.resident.pk))
    return result


def tax_certificate_for(*, section, resident, year) -> TaxCertificate:
    """One resident's certificate (even if everything is zero)."""
    found = tax_certificates_compute(section=section, year=year, resident_ids=[resident.pk], include_empty=True)
    if not found:
        raise ValidationError(_("%(name)s n'a pas séjourné dans la section %(alias)s en %(year)s.") % {
            "name": resident.full_name, "alias": section.alias, "year": year})
    return found[0]


# ---------------------------------------------------------------- texts

def section_settings(section) -> TaxCertificateSettings:
    """The section's texts (the French defaults until a manager changes them; nothing is stored then)."""
    found = TaxCertificateSettings.objects.filter(section=section).first()
    return found or TaxCertificateSettings(section=section)


def check_body(text: str) -> None:
    unknown = sorted({"{" + n + "}" for n in PLACEHOLDER.findall(text or "") if n not in BODY_PLACEHOLDERS})
    if unknown:
        raise ValidationError({"body": _("Mot-clé inconnu : %(unknown)s. Mots-clés possibles : %(known)s.") % {
            "unknown": ", ".join(unknown), "known": ", ".join("{" + n + "}" for n in BODY_PLACEHOLDERS)}})


def settings_save(*, section, body: str, signatory: str, mail_subject: str, mail_body: str,
                  user=None) -> TaxCertificateSettings:
    from .mailing import check_placeholders

    check_body(body)
    try:
        check_placeholders(subject=mail_subject, body=mail_body)
    except ValidationError as exc:
        raise ValidationError({{"subject": "mail_subject", "body": "mail_body"}[key]: messages
                               for key, messages in exc.message_dict.items()}) from exc
    obj = section_settings(section)
    obj.body, obj.signatory, obj.mail_subject, obj.mail_body = body, signatory, mail_subject, mail_body
    obj.updated_by = user if (user and user.is_authenticated) else None
    obj.full_clean(exclude=["section"])
    obj.save()
    return obj


def stays_text(cert: TaxCertificate) -> str:
    parts = []
    for entry, end in cert.stays:
        if end:
            parts.append(_("du %(start)s au %(end)s") % {"start": fr_date(entry), "end": fr_date(end)})
        else:
            parts.append(_("depuis le %(start)s") % {"start": fr_date(entry)})
    return ", ".join(parts)


def resident_label(resident) -> str:
    return f"{resident.get_civility_display()} {resident.full_name}".strip()


def body_values(cert: TaxCertificate, est: dict) -> dict[str, str]:
    return {
        "resident": resident_label(cert.resident), "date_naissance": fr_date(cert.resident.birth_date),
        "annee": str(cert.year), "sejour": stays_text(cert), "etablissement": est.get("name", ""),
        "hebergement": format_euros(cert.accommodation), "dependance": format_euros(cert.dependency),
        "aides": format_euros(cert.aids_total), "net": format_euros(cert.net),
    }


def render_body(text: str, values: dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text or "")


# ---------------------------------------------------------------- PDF

def certificate_html(cert: TaxCertificate, texts: TaxCertificateSettings | None = None) -> str:
    texts = texts or section_settings(cert.section)
    est = establishment_snapshot(cert.section.establishment)
    body = render_body(texts.body, body_values(cert, est))
    return get_template("billing/pdf/tax_certificate.html").render({
        "cert": cert, "est": est, "legal_mention": legal_mention(est.get("legal_status", "")),
        "paragraphs": [p.strip() for p in body.split("\n\n") if p.strip()],
        "resident_name": resident_label(cert.resident), "birth_date": fr_date(cert.resident.birth_date),
        "stays": stays_text(cert), "accommodation": format_euros(cert.accommodation),
        "dependency": format_euros(cert.dependency), "net": format_euros(cert.net),
        "aids": [{"label": a.label, "amount": format_euros(a.amount)} for a in cert.aids],
        "aids_total": format_euros(cert.aids_total), "cgi_statement": CGI_STATEMENT,
        "signatory": texts.signatory, "printed": fr_date(timezone.localdate()),
        "city": est.get("city", ""),
    })


def certificate_pdf(cert: TaxCertificate, texts: TaxCertificateSettings | None = None) -> bytes:
    return html_to_pdf(certificate_html(cert, texts))


def certificates_merged_pdf(certificates: list[TaxCertificate], *, title: str = "", progress=None) -> bytes:
    texts = section_settings(certificates[0].section) if certificates else None

    def rendered():
        for index, cert in enumerate(certificates, start=1):
            yield certificate_pdf(cert, texts)
            if progress:
                progress(index, len(certificates), _("%(done)s / %(total)s attestation(s)") % {
                    "done": index, "total": len(certificates)})

    return pdfs_merge(rendered(), title=title)


def certificate_filename(cert: TaxCertificate) -> str:
    from core.text import text_key

    name = re.sub(r"[^a-z0-9]+", "-", text_key(cert.resident.full_name)).strip("-") or str(cert.resident.pk)
    return f"attestation-fiscale-{cert.year}-{name}.pdf"


def certificates_csv(certificates: list[TaxCertificate]) -> bytes:
    """``REF_EXTERNE;NOM;HEBERGEMENT;DEPENDANCE;AIDES;NET``, one row per resident (shared writer)."""
    return csv_bytes(itertools.chain([CSV_HEADERS], (c.csv_row() for c in certificates)))


# ---------------------------------------------------------------- e-mail

def certificate_key(*, section, resident, year: int) -> str:
    return document_key(DOCUMENT_KIND, f"{section.pk}-{resident.pk}-{year}")


def certificate_attachment(ident: str) -> Attachment:
    """Rendered when the message is sent, from the entries as they are then."""
    from structures.models import Section

    try:
        section_id, resident_id, year = (int(x) for x in ident.split("-"))
    except ValueError as exc:
        raise DocumentUnavailable(_("Attestation inconnue : %(ident)s") % {"ident": ident}) from exc
    section = Section.objects.select_related("establishment__organisation").filter(pk=section_id).first()
    resident = Resident.objects.filter(pk=resident_id).first()
    if section is None or resident is None:
        raise DocumentUnavailable(_("Attestation introuvable : %(ident)s") % {"ident": ident})
    try:
        cert = tax_certificate_for(section=section, resident=resident, year=year)
    except ValidationError as exc:
        raise DocumentUnavailable(" ".join(exc.messages)) from exc
    return Attachment(certificate_filename(cert), certificate_pdf(cert), "application/pdf")


register_document(DOCUMENT_KIND, certificate_attachment)


def certificate_recipients(resident) -> list[str]:
    """The invoice recipient: the paying relative when there is one, otherwise the addresses the
    resident's invoices go to (resident, legal guardian, *destinataire des factures*)."""
    from .mailing import invoice_recipients

    payer = resident.relatives.filter(is_payer=True).exclude(email="").first()
    if payer is not None:
        return [payer.email]
    probe = Invoice(debtor_kind=Invoice.DebtorKind.RESIDENT, resident=resident)
    return [r.email for r in invoice_recipients(probe)]


def certificates_send(*, section, year: int, certificates: list[TaxCertificate], user=None, start: bool = True):
    """One message per certificate with an address, in one campaign; returns (campaign, names without
    an address)."""
    from mailing.models import MailCampaign
    from mailing.services.campaigns import campaign_create, campaign_start
    from mailing.services.outbox import message_build, messages_queue

    from .mailing import _sender

    texts = section_settings(section)
    establishment = section.establishment
    sender = _sender(establishment)
    campaign = campaign_create(
        organisation=establishment.organisation, section=section, kind=MailCampaign.Kind.SINGLE,
        label=_("Attestations fiscales %(year)s — %(alias)s") % {"year": year, "alias": section.alias},
        subject=texts.mail_subject, body=texts.mail_body, user=user, context={"tax_year": year})
    messages, without = [], []
    for cert in certificates:
        recipients = certificate_recipients(cert.resident)
        if not recipients:
            without.append(cert.resident.full_name)
            continue
        values = {"personne": cert.resident.full_name, "annee": str(year), "etablissement": establishment.name}
        key = certificate_key(section=section, resident=cert.resident, year=year)
        messages.append(message_build(
            organisation=establishment.organisation, section=section, campaign=campaign, sender_name=sender[0],
            sender_email=sender[1], recipients=recipients,
            subject=mail_placeholders.render(texts.mail_subject, values),
            body=mail_placeholders.render(texts.mail_body, values), attachments=[{"document": key}],
            related_key=key, related_label=_("Attestation fiscale %(year)s — %(name)s") % {
                "year": year, "name": cert.resident.full_name}, user=user))
    messages_queue(messages)
    campaign.context["no_address"] = without
    campaign.save(update_fields=["context"])
    if start and messages:
        campaign_start(campaign=campaign, user=user)
    return campaign, without


# ---------------------------------------------------------------- job

def batch_filename(section, year: int) -> str:
    return f"attestations-fiscales-{section.alias}-{year}.pdf"


def tax_certificates_job(*, job, progress) -> dict:
    """Job runner "billing.tax_certificates": params {"section_id", "year", "send"}. The merged PDF is
    stored under exports/<job id>/ (downloaded from the job page); with "send", one e-mail per
    resident is queued in a campaign."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from core.services.jobs import JobError

    section = job.section
    if section is None:
        raise JobError(_("Section introuvable."))
    try:
        year = _check_year((job.params or {}).get("year"))
    except ValidationError as exc:
        raise JobError(" ".join(exc.messages)) from exc
    certificates = tax_certificates_compute(section=section, year=year)
    if not certificates:
        raise JobError(_("Aucune attestation à établir pour %(year)s dans la section %(alias)s.") % {
            "year": year, "alias": section.alias})
    progress(0, len(certificates), _("%(n)s attestation(s) à produire") % {"n": len(certificates)})
    content = certificates_merged_pdf(certificates, progress=progress, title=_("Attestations fiscales %(year)s — "
                                                                              "%(alias)s") % {"year": year,
                                                                                             "alias": section.alias})
    name = default_storage.save(f"exports/{job.pk}/{batch_filename(section, year)}", ContentFile(content))
    result = {"file": name, "count": len(certificates),
              "message": _("%(n)s attestation(s) prête(s) à imprimer.") % {"n": len(certificates)}}
    if (job.params or {}).get("send"):
        try:
            campaign, without = certificates_send(section=section, year=year, certificates=certificates,
                                                  user=job.created_by)
        except ValidationError as exc:
            raise JobError(" ".join(exc.messages)) from exc
        result.update(campaign_id=campaign.pk, no_address=without)
        result["message"] += " " + _("%(sent)s courriel(s) en file, %(none)s sans adresse e-mail.") % {
            "sent": len(certificates) - len(without), "none": len(without)}
    return result


def tax_certificates_start(*, section, year: int, send: bool = False, user=None):
    from core.services.jobs import job_create, job_enqueue
    from core.tasks import run_job

    year = _check_year(year)
    label = (_("Attestations fiscales %(year)s (impression et envoi)") if send else
             _("Attestations fiscales %(year)s (impression)")) % {"year": year}
    job = job_create(kind=JOB_KIND, label=label, user=user, section=section, params={"year": year, "send": send})
    return job_enqueue(job=job, task=run_job)
