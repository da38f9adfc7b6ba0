"""Letter texts per establishment and level, and the letters as PDFs (WeasyPrint, through the same
``html_to_pdf`` as the invoices: no network access while rendering)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from billing.services.pdf import html_to_pdf
from core.money import ZERO, format_euros

from ..models import Audience, ReminderText

PLACEHOLDERS = ("personne", "etablissement", "date_limite", "total_du")

# The French texts shipped for each level (editable per establishment; created on first use).
DEFAULT_TEXTS = {
    1: {
        "title": "Relance — factures impayées",
        "header": ("Madame, Monsieur,\n\nSauf erreur de notre part, les factures ci-dessous concernant {personne} "
                   "restent impayées à ce jour. Nous vous remercions de bien vouloir régler la somme de {total_du} "
                   "avant le {date_limite}."),
        "footer": ("Si votre règlement a été effectué entre-temps, nous vous prions de ne pas tenir compte de ce "
                   "courrier.\n\nVeuillez agréer, Madame, Monsieur, nos salutations distinguées.\n\n{etablissement}"),
    },
    2: {
        "title": "Deuxième relance — factures impayées",
        "header": ("Madame, Monsieur,\n\nMalgré notre premier courrier, les factures ci-dessous concernant "
                   "{personne} restent impayées. Nous vous demandons de régler la somme de {total_du} avant le "
                   "{date_limite} ou de prendre contact avec le service facturation."),
        "footer": ("Sans règlement de votre part, nous serons contraints de vous adresser une mise en demeure.\n\n"
                   "Veuillez agréer, Madame, Monsieur, nos salutations distinguées.\n\n{etablissement}"),
    },
    3: {
        "title": "Mise en demeure de payer",
        "header": ("Madame, Monsieur,\n\nMalgré nos relances, les factures ci-dessous concernant {personne} restent "
                   "impayées. Par la présente, nous vous mettons en demeure de régler la somme de {total_du} avant "
                   "le {date_limite}."),
        "footer": ("À défaut de règlement à cette date, nous transmettrons le dossier au comptable public pour "
                   "recouvrement.\n\nVeuillez agréer, Madame, Monsieur, nos salutations distinguées.\n\n"
                   "{etablissement}"),
    },
}

# Payers (départements, caisses, mutuelles) are written to as institutions, about their unpaid
# invoices and statements (bordereaux); {personne} is the payer's name.
DEFAULT_PAYER_TEXTS = {
    1: {
        "title": "Relance — factures et bordereaux impayés",
        "header": ("Madame, Monsieur,\n\nSauf erreur de notre part, les factures et bordereaux ci-dessous adressés à "
                   "{personne} restent impayés à ce jour. Nous vous remercions de bien vouloir procéder au règlement "
                   "de la somme de {total_du} avant le {date_limite}."),
        "footer": ("Si le règlement a été effectué entre-temps, merci de ne pas tenir compte de ce courrier et de "
                   "nous indiquer sa référence.\n\nNous vous prions d'agréer, Madame, Monsieur, nos salutations "
                   "distinguées.\n\n{etablissement}"),
    },
    2: {
        "title": "Deuxième relance — factures et bordereaux impayés",
        "header": ("Madame, Monsieur,\n\nMalgré notre premier courrier, les factures et bordereaux ci-dessous "
                   "adressés à {personne} restent impayés. Nous vous demandons de régler la somme de {total_du} "
                   "avant le {date_limite} ou de nous faire connaître le motif du non-paiement."),
        "footer": ("Nous vous prions d'agréer, Madame, Monsieur, nos salutations distinguées.\n\n{etablissement}"),
    },
    3: {
        "title": "Mise en demeure de payer",
        "header": ("Madame, Monsieur,\n\nMalgré nos relances, les factures et bordereaux ci-dessous adressés à "
                   "{personne} restent impayés. Par la présente, nous vous mettons en demeure de régler la somme de "
                   "{total_du} avant le {date_limite}."),
        "footer": ("À défaut de règlement à cette date, nous transmettrons le dossier au comptable public pour "
                   "recouvrement.\n\nNous vous prions d'agréer, Madame, Monsieur, nos salutations distinguées.\n\n"
                   "{etablissement}"),
    },
}
DEFAULTS = {Audience.FAMILY: DEFAULT_TEXTS, Audience.PAYER: DEFAULT_PAYER_TEXTS}


def reminder_texts(establishment, audience: str = Audience.FAMILY) -> dict[int, ReminderText]:
    """The establishment's three texts for ``audience``, the shipped defaults created on first use."""
    texts = {t.level: t for t in ReminderText.objects.filter(establishment=establishment, audience=audience)}
    for level, default in DEFAULTS[audience].items():
        if level not in texts:
            texts[level], _created = ReminderText.objects.get_or_create(
                establishment=establishment, audience=audience, level=level, defaults=default)
    return texts


def fill(text: str, values: dict[str, str]) -> str:
    for name in PLACEHOLDERS:
        text = text.replace("{" + name + "}", values.get(name, ""))
    return text


@dataclass
class LetterLine:
    number: str
    issue_date: date
    due_date: date
    amount: Decimal
    balance: Decimal
    level: int
    statement: str = ""  # the statement (bordereau) the invoice was sent in, for payers


@dataclass
class LetterData:
    """Everything printed on one debtor's letter."""

    establishment: object
    debtor_name: str
    debtor_address: str
    person: str
    level: int
    print_date: date
    pay_by: date
    lines: list[LetterLine]
    registered_number: str = ""
    audience: str = Audience.FAMILY

    @property
    def total_due(self) -> Decimal:
        return sum((line.balance for line in self.lines), ZERO)


def letter_context(data: LetterData, text: ReminderText) -> dict:
    values = {"personne": data.person, "etablissement": data.establishment.name,
              "date_limite": data.pay_by.strftime("%d/%m/%Y"), "total_du": format_euros(data.total_due)}
    return {"letter": data, "title": fill(text.title, values), "header": fill(text.header, values),
            "footer": fill(text.footer, values), "total_due": format_euros(data.total_due),
            "establishment": data.establishment,
            "with_statements": any(line.statement for line in data.lines),
            "lines": [{"number": line.number, "issue_date": line.issue_date, "due_date": line.due_date,
                       "amount": format_euros(line.amount), "balance": format_euros(line.balance),
                       "statement": line.statement} for line in data.lines]}


def letters_html(letters: list[LetterData]) -> str:
    if not letters:
        raise ValueError(_("Aucune lettre à produire."))
    texts = {audience: reminder_texts(letters[0].establishment, audience)
             for audience in {d.audience for d in letters}}
    return render_to_string("reminders/pdf/letters.html",
                            {"letters": [letter_context(d, texts[d.audience][d.level]) for d in letters]})


def letters_pdf(letters: list[LetterData]) -> bytes:
    """One PDF with every letter (each on its own pages)."""
    return html_to_pdf(letters_html(letters))
