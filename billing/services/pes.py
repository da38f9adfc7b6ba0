"""PES V2 ORMC rôles of public establishments (books.md §1; the file itself: ``core.pes``).

* ``role_simulate(period=…)`` — « Simuler » : builds the rôle of a period's issued invoices (one titre
  per debtor, lines per product code) and the titres d'annulation of the credit notes not sent yet,
  renders the file and runs the checker; nothing is stored and no number is consumed.
* ``role_generate(period=…)`` — « Générer le flux » : the same under the row-locked rôle counter of
  the exercice, checked (and validated against ``PES_XSD_DIR`` when set) before anything is stored;
  each invoice goes into one titre only.
* ``role_render(role)`` — the file of a stored rôle rebuilt from its snapshots: the same bytes.
* ``acquit_import(content=…)`` — a PES_ACQUIT marks rôles accepted or rejected with the reasons.

The SEPA block comes from ``sepa`` (an app above billing) through ``register_sepa_provider``.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core import pes
from core.money import ZERO

from ..models import Invoice
from ..models.pes import PesArticle, PesArticleInvoice, PesCounter, PesRole, PesSettings
from .accounting import PAYER_FINANCING, Financing, _Resolver, account_map_for
from .periods import MONTHS

GENERATE_JOB_KIND = "billing.pes_role"
SIMULATE_JOB_KIND = "billing.pes_simulate"
PROGRESS_EVERY = 25  # debtors between two progress reports of a simulation

SepaProvider = Callable[..., "dict | None"]
_SEPA_PROVIDERS: list[SepaProvider] = []


def register_sepa_provider(provider: SepaProvider) -> SepaProvider:
    """``provider(*, invoice)`` returns the active mandate of the invoice's debtor when it pays by
    direct debit: {"rum", "signature_date" (date), "iban", "bic", "holder", "sequence" ("FRST"/"RCUR")},
    else None. Registered by ``sepa`` at startup so that billing never imports it."""
    if provider not in _SEPA_PROVIDERS:
        _SEPA_PROVIDERS.append(provider)
    return provider


def _sepa_for(invoice: Invoice) -> dict | None:
    for provider in _SEPA_PROVIDERS:
        found = provider(invoice=invoice)
        if found:
            return found
    return None


def pes_settings_for(establishment) -> PesSettings | None:
    return PesSettings.objects.filter(establishment=establishment).first()


def pes_applies(establishment) -> bool:
    return establishment.legal_status == "public"


def xsd_dir() -> str:
    return getattr(django_settings, "PES_XSD_DIR", "") or ""


def _month_text(day: date) -> str:
    return pes.pes_text(f"{MONTHS[day.month - 1]} {day.year}", 30)


def period_per(settings: PesSettings, month: int) -> str:
    if settings.per_encoding == PesSettings.PerEncoding.FIXED:
        return settings.per_fixed
    if settings.per_encoding == PesSettings.PerEncoding.LAST_DIGIT:
        return str(month % 10)
    return str(month)[0]


def num_dette(invoice_number: str, *, exercice: int, id_bord: int, id_pce: int) -> str:
    """The debt number: year + sequential number of the titre's (first) invoice, at least 3 digits
    (« VER-2026-000017 » → 2026017, as in books.md's test vector); otherwise exercice + rôle + article."""
    match = re.search(r"(\d{4})-(\d+)$", invoice_number or "")
    if match and len(match.group(1)) + len(str(int(match.group(2)))) <= 15:
        return f"{match.group(1)}{int(match.group(2)):03d}"
    return f"{exercice}{id_bord:04d}{id_pce:05d}"


def nom_fic(settings: PesSettings, exercice: int, id_bord: int) -> str:
    return f"PESORMC_{settings.id_coll}_{settings.cod_bud}_{exercice}_{id_bord:07d}.xml"


# ---------------------------------------------------------------- debtors

def _address(obj, establishment, who: str, *, lives_there: bool = False) -> dict:
    street, postal_code, city = obj.address, obj.postal_code, obj.city
    if lives_there and not (street or postal_code or city):
        # A resident without an address of their own lives in the establishment.
        street, postal_code, city = establishment.address, establishment.postal_code, establishment.city
    postal_code = (postal_code or "").replace(" ", "")
    if not re.fullmatch(r"\d{5}", postal_code):
        raise ValidationError(_("%(who)s : le code postal « %(cp)s » n'a pas 5 chiffres (adresse du débiteur).")
                              % {"who": who, "cp": postal_code})
    street, city = pes.pes_text(street, 38), pes.pes_text(city, 38)
    if not street or not city:
        raise ValidationError(_("%(who)s : l'adresse (rue et ville) est obligatoire dans un titre PES.") % {"who": who})
    return {"adr2": street, "cp": postal_code, "ville": city}


def _tiers(invoice: Invoice, settings: PesSettings) -> dict:
    establishment = invoice.establishment
    if invoice.debtor_kind == Invoice.DebtorKind.PAYER:
        payer = invoice.payer
        cat, nat, typ = settings.tiers_code(payer.kind)
        who = _("Payeur %(name)s") % {"name": payer.name}
        return {"cat_tiers": cat, "nat_jur": nat, "typ_tiers": typ, "nom": pes.pes_text(payer.name, 38),
                **_address(payer, establishment, who)}
    person = invoice.relative if invoice.debtor_kind == Invoice.DebtorKind.RELATIVE else invoice.resident
    cat, nat, typ = settings.tiers_code(invoice.debtor_kind)
    who = f"{person.last_name} {person.first_name}".strip()
    tiers = {"cat_tiers": cat, "nat_jur": nat, "typ_tiers": typ, "civilite": person.civility or "",
             "nom": pes.pes_text(person.last_name, 38), "prenom": pes.pes_text(person.first_name, 38)}
    if not tiers["nom"]:
        raise ValidationError(_("%(who)s : le nom du débiteur est vide.") % {"who": who})
    return {**tiers, **_address(person, establishment, who,
                                lives_there=invoice.debtor_kind == Invoice.DebtorKind.RESIDENT)}


def _debtor_key(invoice: Invoice) -> tuple:
    return (invoice.debtor_kind, invoice.payer_id if invoice.debtor_kind == Invoice.DebtorKind.PAYER else None,
            invoice.relative_id if invoice.debtor_kind == Invoice.DebtorKind.RELATIVE else None,
            invoice.resident_id if invoice.debtor_kind != Invoice.DebtorKind.PAYER else None)


# ---------------------------------------------------------------- building

@dataclass
class RoleDraft:
    """A rôle before it is stored: ``data`` for ``core.pes.pes_xml``, ``articles`` (with their
    invoices), the bytes, the checker's errors and the warnings shown with « Simuler »."""

    data: dict
    articles: list[dict]
    content: bytes = b""
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((Decimal(a["amount"]) for a in self.articles), ZERO)


def _candidates(period) -> tuple[list[Invoice], list[Invoice]]:
    related = ("payer", "resident", "relative", "establishment", "credited_invoice")
    invoices = list(Invoice.objects.filter(period=period, kind__in=[Invoice.Kind.INVOICE, Invoice.Kind.RAPPEL])
                    .exclude(status=Invoice.Status.DRAFT).exclude(number="").exclude(pes_links__active=True)
                    .select_related(*related).prefetch_related("lines__product", "lines__credited_line__product")
                    .order_by("number"))
    in_role = {i.pk for i in invoices}
    notes = [n for n in Invoice.objects.filter(section=period.section, kind=Invoice.Kind.CREDIT_NOTE,
                                               credited_invoice__isnull=False)
             .exclude(pes_links__active=True)
             .exclude(status=Invoice.Status.DRAFT).exclude(number="")
             .select_related(*related).prefetch_related("lines__product", "lines__credited_line__product")
             .order_by("number")
             if n.credited_invoice_id in in_role or PesArticleInvoice.objects.filter(
                 invoice_id=n.credited_invoice_id, active=True).exists()]
    return invoices, notes


def _lines(invoices: list[Invoice], settings: PesSettings, resolver: _Resolver, month: str, sign: int,
           who: str) -> list[dict]:
    groups: dict[tuple[str, str], list] = {}
    for invoice in invoices:
        financing = (PAYER_FINANCING.get(invoice.payer.kind, Financing.OTHER)
                     if invoice.debtor_kind == Invoice.DebtorKind.PAYER else Financing.RESIDENT)
        for line in invoice.lines.all():
            product = line.product or (line.credited_line.product if line.credited_line_id else None)
            kind = product.kind if product else "other"
            code = pes.pes_text(settings.product_code(kind), 4)
            nature, _label = resolver.revenue(product, financing)
            label = product.get_kind_display() if product else _("Autres prestations")
            group = groups.setdefault((code, nature), [label, ZERO])
            group[1] += line.amount * sign
    lines = []
    for (code, nature), (label, total) in sorted(groups.items()):
        if total == 0:
            continue
        if total < 0:
            raise ValidationError(_("%(who)s : le produit %(code)s (%(label)s) est négatif (%(amount)s) ; un titre "
                                    "n'a que des lignes positives.") % {"who": who, "code": code, "label": label,
                                                                       "amount": total})
        lines.append({"id_ligne": len(lines) + 1, "obj": pes.pes_text(f"{label} {month}", 160),
                      "cod_prod_loc": code, "nature": nature, "mt_ht": pes.amount(total)})
    return lines


def _sepa_block(invoice: Invoice, settings: PesSettings, dte: date, month: str, used_rums: set[str]) -> dict | None:
    found = _sepa_for(invoice)
    if not found:
        return None
    rum = found["rum"]
    sequence = "RCUR" if (found.get("sequence") == "RCUR" or rum in used_rums) else "FRST"
    return {"per_prel": "07", "dte_prel": (dte + timedelta(days=settings.debit_delay_days)).isoformat(),
            "sequence": pes.SEQUENCE_CODES[sequence], "date_sign": found["signature_date"].isoformat(),
            "rum": pes.sepa_text(rum, 35),
            "lib_prel": pes.sepa_text(pes.pes_text(settings.debit_label.replace("{mois}", month), 140), 140),
            "iban": found["iban"].replace(" ", "").upper(), "bic": (found.get("bic") or "").upper(),
            "holder": pes.pes_text(found["holder"], 32)}


def role_build(*, period, settings: PesSettings, id_bord: int, on: date, progress=None) -> RoleDraft:
    """The rôle of ``period`` numbered ``id_bord`` (nothing stored). ``progress(current, total,
    message)`` (a job's) is told every 25 debtors; never pass it inside a transaction."""
    establishment = period.section.establishment
    exercice = period.accounting_date.year
    month = _month_text(period.start)
    per = period_per(settings, period.start.month)
    resolver = _Resolver(account_map_for(establishment), True)
    invoices, notes = _candidates(period)
    draft_warnings: list[str] = []
    used_rums = set(PesArticle.objects.filter(role__establishment=establishment).exclude(sepa_rum="")
                    .values_list("sepa_rum", flat=True))
    groups: dict[tuple, list[Invoice]] = {}
    for invoice in invoices:
        groups.setdefault(_debtor_key(invoice), []).append(invoice)
    articles: list[dict] = []
    for done, members in enumerate(groups.values()):
        if progress and done % PROGRESS_EVERY == 0:
            progress(done, len(groups) + 1, _("Titres : %(n)s sur %(total)s") % {"n": done, "total": len(groups)})
        first = members[0]
        who = f"{first.debtor_name or first}".strip()
        total = sum((i.total for i in members), ZERO)
        if total <= 0:
            draft_warnings.append(_("%(who)s : total nul ou négatif (%(total)s), pas de titre.")
                                  % {"who": who, "total": total})
            continue
        lines = _lines(members, settings, resolver, month, 1, who)
        sepa = _sepa_block(first, settings, on, month, used_rums)
        if sepa:
            used_rums.add(sepa["rum"])
        elif first.payment_mode == "direct_debit":
            draft_warnings.append(_("%(who)s : règlement par prélèvement sans mandat actif ; titre sans "
                                    "prélèvement.") % {"who": who})
        numbers = " ".join(i.number for i in members)
        articles.append({"nat_pce": "01", "invoices": members, "tiers": _tiers(first, settings), "sepa": sepa,
                         "lines": lines, "numero_facture": first.number[:20], "who": who, "dette_of": first.number,
                         "obj_pce": pes.pes_text(f"{settings.objet_template.replace('{mois}', month)} "
                                                 f"FACTURE {numbers}", 160)})
    for note in notes:
        who = f"{note.debtor_name or note}".strip()
        lines = _lines([note], settings, resolver, month, -1, who)
        if not lines:
            continue
        credited = note.credited_invoice
        articles.append({"nat_pce": "06", "invoices": [note], "tiers": _tiers(note, settings), "sepa": None,
                         "lines": lines, "numero_facture": note.number[:20], "who": who,
                         "dette_of": credited.number,
                         "obj_pce": pes.pes_text(f"ANNULATION FACTURE {credited.number} PAR AVOIR {note.number}",
                                                 160)})
    if not articles:
        raise ValidationError(_("Aucune facture émise de la période %(label)s n'est à envoyer (toutes sont déjà "
                                "dans un rôle, ou aucune n'est émise).") % {"label": period.label})
    for index, article in enumerate(articles, start=1):
        article["id_pce"] = index
        article["num_dette"] = num_dette(article["dette_of"], exercice=exercice, id_bord=id_bord, id_pce=index)
        article["per"] = per
        article["cle1"] = pes.cle1(cod_col=settings.cod_col, id_bord=id_bord, exercice=exercice, per=per,
                                   num_dette=article["num_dette"])
        article["cle2"] = pes.cle2(exercice=exercice, per=per, num_dette=article["num_dette"])
        article["amount"] = pes.amount(sum((Decimal(line["mt_ht"]) for line in article["lines"]), ZERO))
        article["pj"] = []
        if settings.attach_pdfs:
            for invoice in article["invoices"]:
                if not (invoice.pdf and invoice.pdf.name):
                    raise ValidationError(_("Le PDF de la facture %(number)s n'est pas encore produit : les factures "
                                            "jointes (PES PJ) l'exigent.") % {"number": invoice.number})
                article["pj"].append({"id_unique": _pj_id(invoice), "nom": f"{_pj_id(invoice)}.pdf"})
    header = {
        "envelope": {"nom_fic": nom_fic(settings, exercice, id_bord), "sigle": pes.pes_text(settings.sigle, 32),
                     "adresse": pes.pes_text("SEJOUR FACTURATION EHPAD", 38)},
        "header": {"dte_str": on.isoformat(), "id_post": settings.id_post, "id_coll": settings.id_coll,
                   "fin_jur": settings.fin_jur, "cod_col": settings.cod_col, "cod_bud": settings.cod_bud,
                   "libelle_col_bud": pes.pes_text(settings.libelle_col_bud, 38)},
        "bordereau": {"exer": exercice, "id_bord": id_bord, "dte_bord_em": on.isoformat(),
                      "dte_asp": (on + timedelta(days=settings.asp_delay_days)).isoformat(),
                      "objet": pes.pes_text(settings.objet_template.replace("{mois}", month), 160)},
        "with_attachments": settings.attach_pdfs, "pj_type": settings.pj_type, "edition": settings.edition,
    }
    draft = RoleDraft(data=header, articles=articles, warnings=draft_warnings)
    if progress:
        progress(len(groups), len(groups) + 1, _("Écriture et contrôle du fichier"))
    draft.content = pes.pes_xml(_file_data(header, articles, _attachments(draft)))
    draft.errors = pes.pes_check(draft.content)
    return draft


def _pj_id(invoice: Invoice) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", invoice.number)[:50]


def _pdf_bytes(invoice: Invoice) -> bytes:
    with invoice.pdf.open("rb") as handle:
        return handle.read()


_PIECE_KEYS = ("id_pce", "nat_pce", "obj_pce", "num_dette", "per", "cle1", "cle2", "numero_facture", "pj", "lines",
               "sepa", "tiers")


def _file_data(header: dict, articles: list[dict], attachments: list[dict]) -> dict:
    edition = header.get("edition") or ""
    pieces = [{**{k: a[k] for k in _PIECE_KEYS}, "edition": edition} for a in articles]
    return {"envelope": header["envelope"], "header": header["header"], "bordereau": header["bordereau"],
            "pieces": pieces, "attachments": attachments}


def _settings_or_error(establishment) -> PesSettings:
    if not pes_applies(establishment):
        raise ValidationError(_("L'établissement %(name)s n'est pas public : le PES ORMC ne s'applique pas.")
                              % {"name": establishment})
    settings = pes_settings_for(establishment)
    if settings is None:
        raise ValidationError(_("Renseignez d'abord les paramètres PES de l'établissement %(name)s (poste comptable, "
                                "SIRET, FINESS juridique, codes collectivité et budget).") % {"name": establishment})
    return settings


def _next_number(settings: PesSettings, exercice: int) -> int:
    """The number the next rôle would take (read only: « Simuler » consumes nothing)."""
    counter = PesCounter.objects.filter(establishment_id=settings.establishment_id, exercice=exercice).first()
    if counter is None:
        return settings.first_role_number
    return max(counter.last_number + 1, settings.first_role_number)


def role_simulate(*, period, on: date | None = None, progress=None) -> RoleDraft:
    """« Simuler » : the rôle as it would be generated now; nothing stored, no number consumed."""
    settings = _settings_or_error(period.section.establishment)
    on = on or timezone.localdate()
    draft = role_build(period=period, settings=settings, id_bord=_next_number(
        settings, period.accounting_date.year), on=on, progress=progress)
    if not draft.errors and xsd_dir():
        draft.errors = pes.pes_xsd_errors(draft.content, xsd_dir())
    return draft


@transaction.atomic
def role_generate(*, period, user=None, on: date | None = None, request_key: str = "") -> PesRole:
    """« Générer le flux » : number the rôle (row-locked counter of the exercice), check the file
    (rules of books.md §1, and the official XSD when ``PES_XSD_DIR`` is set), store it.

    ``request_key`` (the job's): a request that already produced its rôle gets that rôle back
    (``already_generated`` set), so a job run again never numbers a second rôle."""
    establishment = period.section.establishment
    settings = _settings_or_error(establishment)
    on = on or timezone.localdate()
    exercice = period.accounting_date.year
    PesSettings.objects.select_for_update().get(pk=settings.pk)  # one rôle at a time per establishment
    if request_key:
        done = PesRole.objects.filter(establishment=establishment, request_key=request_key).first()
        if done is not None:
            done.already_generated = True
            return done
    counter, _created = PesCounter.objects.get_or_create(
        establishment=establishment, exercice=exercice, defaults={"last_number": settings.first_role_number - 1})
    counter = PesCounter.objects.select_for_update().get(pk=counter.pk)
    id_bord = max(counter.last_number + 1, settings.first_role_number)
    draft = role_build(period=period, settings=settings, id_bord=id_bord, on=on)
    pes.pes_assert_valid(draft.content, xsd_dir=xsd_dir() or None)
    counter.last_number = id_bord
    counter.save(update_fields=["last_number"])
    bord = draft.data["bordereau"]
    role = PesRole.objects.create(
        establishment=establishment, section=period.section, period=period, exercice=exercice, id_bord=id_bord,
        nom_fic=draft.data["envelope"]["nom_fic"], dte_bord_em=on, dte_asp=date.fromisoformat(bord["dte_asp"]),
        objet=bord["objet"], header=draft.data, total=draft.total, pieces_count=len(draft.articles),
        with_attachments=settings.attach_pdfs, content=draft.content,
        sha256=hashlib.sha256(draft.content).hexdigest(), request_key=request_key,
        created_by=user if (user and user.is_authenticated) else None)
    for article in draft.articles:
        row = PesArticle.objects.create(
            role=role, id_pce=article["id_pce"], nat_pce=article["nat_pce"], num_dette=article["num_dette"],
            per=article["per"], cle1=article["cle1"], cle2=article["cle2"], numero_facture=article["numero_facture"],
            obj_pce=article["obj_pce"], amount=Decimal(article["amount"]), debtor_name=article["who"][:80],
            tiers=article["tiers"], sepa=article["sepa"], sepa_rum=(article["sepa"] or {}).get("rum", ""),
            lines=article["lines"])
        PesArticleInvoice.objects.bulk_create(PesArticleInvoice(article=row, invoice=invoice, position=i)
                                              for i, invoice in enumerate(article["invoices"]))
    return role


def _attachments(draft: RoleDraft) -> list[dict]:
    if not draft.data.get("with_attachments"):
        return []
    return [{"id_unique": _pj_id(i), "nom": f"{_pj_id(i)}.pdf", "type": draft.data["pj_type"],
             "content": _pdf_bytes(i)} for a in draft.articles for i in a["invoices"]]


def role_render(role: PesRole) -> bytes:
    """The file of a stored rôle, rebuilt from its snapshots (identical to the stored bytes)."""
    links: dict[int, list[Invoice]] = {}
    for link in (PesArticleInvoice.objects.filter(article__role=role).select_related("invoice")
                 .order_by("article__id_pce", "position")):
        links.setdefault(link.article_id, []).append(link.invoice)
    articles = []
    for row in role.articles.order_by("id_pce"):
        invoices = links.get(row.pk, [])
        articles.append({"id_pce": row.id_pce, "nat_pce": row.nat_pce, "obj_pce": row.obj_pce,
                         "num_dette": row.num_dette, "per": row.per, "cle1": row.cle1, "cle2": row.cle2,
                         "numero_facture": row.numero_facture, "lines": row.lines, "sepa": row.sepa,
                         "tiers": row.tiers, "invoices": invoices,
                         "pj": [{"id_unique": _pj_id(i), "nom": f"{_pj_id(i)}.pdf"} for i in invoices]
                         if role.with_attachments else []})
    draft = RoleDraft(data=role.header, articles=articles)
    return pes.pes_xml(_file_data(role.header, articles, _attachments(draft)))


# ---------------------------------------------------------------- acknowledgement

@dataclass
class AcquitResult:
    role: PesRole
    accepted: bool
    reason: str


@transaction.atomic
def acquit_import(*, content: bytes, establishments=None) -> list[AcquitResult]:
    """Mark the rôles named in a PES_ACQUIT (exercice + rôle number) accepted or rejected with the
    accountant's reasons; ``establishments`` limits the search (the user's scope)."""
    results = []
    for element in pes.acquit_parse(content):
        if "PJ" in element["domain"].upper():  # acknowledgements of attachments: the rôle's own element counts
            continue
        if not (element["id_bord"].isdigit() and element["exercice"].isdigit()):
            raise ValidationError(_("Acquittement : NumBord « %(num)s » ou ExerciceBord « %(exer)s » illisible.")
                                  % {"num": element["id_bord"], "exer": element["exercice"]})
        roles = PesRole.objects.select_for_update().filter(exercice=int(element["exercice"]),
                                                           id_bord=int(element["id_bord"]))
        if establishments is not None:
            roles = roles.filter(establishment__in=establishments)
        role = roles.first()
        if role is None:
            raise ValidationError(_("Acquittement : aucun rôle n° %(num)s de l'exercice %(exer)s.")
                                  % {"num": element["id_bord"], "exer": element["exercice"]})
        reasons = [f"{code} {label}".strip() for code, label in element["errors"]]
        for id_pce, labels in element["pieces"].items():
            if id_pce.isdigit():
                role.articles.filter(id_pce=int(id_pce)).update(ack_error="\n".join(labels))
                reasons += [_("Titre %(id)s : %(label)s") % {"id": id_pce, "label": label} for label in labels]
        role.status = PesRole.Status.ACCEPTED if element["ok"] else PesRole.Status.REJECTED
        if not element["ok"]:  # its invoices go into the next rôle (with a new number)
            PesArticleInvoice.objects.filter(article__role=role).update(active=False)
        role.ack_reason = "" if element["ok"] else "\n".join(reasons) or _("Rejet sans motif indiqué.")
        role.ack_at = timezone.now()
        role.save(update_fields=["status", "ack_reason", "ack_at"])
        results.append(AcquitResult(role=role, accepted=element["ok"], reason=role.ack_reason))
    if not results:
        raise ValidationError(_("L'acquittement ne concerne aucun bordereau de recette."))
    return results
