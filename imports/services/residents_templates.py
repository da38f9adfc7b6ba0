"""Template workbooks for the residents import: the right headers on row 1 (mandatory ones in bold
on a coloured background), one example row, and a « Notes » sheet explaining every column in French.

Downloadable from the browser (``imports:residents-template``) and written by
``manage.py import_residents --template DIR``.
"""
from __future__ import annotations

import io
from datetime import date
from pathlib import Path

from django.utils.translation import gettext as _

from core.exports import neutralize

from .residents_import import RELATIVE_COLUMNS, RESIDENT_COLUMNS
from .xlsx import column_letter

TEMPLATES = {
    "residents": ("modele_residents.xlsx", RESIDENT_COLUMNS),
    "proches": ("modele_proches.xlsx", RELATIVE_COLUMNS),
}
TEXT_COLUMNS = {"NUMERO", "REF_EXTERNE", "NIR", "CODE_POSTAL", "TELEPHONE", "IBAN", "BIC", "RUM", "CHAMBRE"}
DATE_COLUMNS = {"DATE_NAISSANCE", "DATE_ENTREE", "DATE_SIGNATURE_MANDAT", "DERNIER_PRELEVEMENT"}

GENERAL_NOTES = [
    "Format : classeur Excel (.xlsx) de 20 Mo au plus ; seule la première feuille est lue.",
    "Ligne 1 : les en-têtes en majuscules, tels que dans ce modèle ; l'ordre des colonnes est libre. Une colonne "
    "inconnue est signalée puis ignorée ; une colonne obligatoire absente est une erreur.",
    "Une ligne par personne à partir de la ligne 2 ; remplacez la ligne d'exemple. Pas de cellules fusionnées ; "
    "les formules doivent avoir leur valeur calculée (fichier enregistré par Excel).",
    "Dates : cellule date, ou texte JJ/MM/AAAA (ou AAAA-MM-JJ). Booléens : 0 ou 1 (OUI / NON acceptés).",
    "Les espaces en début et fin de cellule sont ignorés ; une cellule vide signifie « pas de valeur ».",
    "Tout le fichier est contrôlé avant l'import : au moindre refus, rien n'est importé et le rapport liste chaque "
    "erreur (fichier, feuille, ligne, colonne, valeur, message).",
    "L'import ne crée que de nouveaux résidents (avec leur séjour en cours) ; il ne modifie ni ne supprime "
    "personne et ne reprend aucun historique de facturation. Prérequis dans chaque section : le forfait "
    "d'hébergement, les payeurs et un calendrier généré.",
]


def _example_values(which: str, section=None) -> dict:
    values = {c.name: c.example for c in TEMPLATES[which][1]}
    if which == "residents" and section is not None:
        values["SECTION"] = section.alias
        from billing.models import Package
        from payers.models import Payer

        codes = list(Package.objects.filter(section=section).values_list("code", flat=True))
        if codes:
            values["HEBERGEMENT"] = "STD" if "STD" in codes else codes[0]
        payers = list(Payer.objects.filter(organisation_id=section.establishment.organisation_id)
                      .order_by("kind", "code").values_list("code", "kind", "departement"))
        own = [code for code, kind, dept in payers if kind == "departement"
               and dept == section.establishment.departement]
        values["PAYEUR"] = own[0] if own else (payers[0][0] if payers else "")
        values["DOMICILE_SECOURS"] = section.establishment.departement
    return values


def template_workbook(which: str, *, section=None) -> bytes:
    """The template workbook ``which`` ("residents" or "proches") as XLSX bytes."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill

    filename, columns = TEMPLATES[which]
    values = _example_values(which, section)
    book = Workbook()
    sheet = book.active
    sheet.title = _("Résidents") if which == "residents" else _("Proches")
    mandatory_fill = PatternFill("solid", fgColor="FFE2B6")
    optional_fill = PatternFill("solid", fgColor="E8EEF7")
    for index, column in enumerate(columns, start=1):
        cell = sheet.cell(row=1, column=index, value=column.name)
        cell.font = Font(bold=column.mandatory)
        cell.fill = mandatory_fill if column.mandatory else optional_fill
        cell.comment = Comment(("* " + _("Obligatoire.") + " " if column.mandatory else "") + column.help, "Séjour")
        example = neutralize(values.get(column.name))  # codes typed by users: never a formula
        target = sheet.cell(row=2, column=index, value=example if example != "" else None)
        if column.name in DATE_COLUMNS:
            target.number_format = "DD/MM/YYYY"
        elif column.name in TEXT_COLUMNS:
            target.number_format = "@"
            if target.value is not None:
                target.value = str(target.value)
        letter = column_letter(index - 1)
        sheet.column_dimensions[letter].width = max(12, len(column.name) + 4)
    sheet.freeze_panes = "A2"

    notes = book.create_sheet(_("Notes"))
    notes.column_dimensions["A"].width = 26
    notes.column_dimensions["B"].width = 13
    notes.column_dimensions["C"].width = 100
    notes.column_dimensions["D"].width = 28
    title = _("Import des résidents — fichier des résidents") if which == "residents" \
        else _("Import des résidents — fichier des proches (facultatif)")
    notes.cell(row=1, column=1, value=title).font = Font(bold=True, size=14)
    row = 3
    for text in GENERAL_NOTES:
        notes.cell(row=row, column=1, value="•")
        cell = notes.cell(row=row, column=2, value=_(text))
        notes.merge_cells(start_row=row, start_column=2, end_row=row, end_column=4)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        notes.row_dimensions[row].height = 30
        row += 1
    row += 1
    for index, header in enumerate([_("Colonne"), _("Obligatoire"), _("Règle"), _("Exemple")], start=1):
        notes.cell(row=row, column=index, value=header).font = Font(bold=True)
    for column in columns:
        row += 1
        notes.cell(row=row, column=1, value=column.name + (" *" if column.mandatory else "")).font = \
            Font(bold=column.mandatory)
        notes.cell(row=row, column=2, value=_("Oui") if column.mandatory else _("Non"))
        notes.cell(row=row, column=3, value=column.help).alignment = Alignment(wrap_text=True, vertical="top")
        example = values.get(column.name)
        if isinstance(example, date):
            example = example.strftime("%d/%m/%Y")
        notes.cell(row=row, column=4, value=neutralize(str(example)) if example not in (None, "") else "")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def template_write(directory: Path | str, *, section=None) -> list[Path]:
    """Write both template workbooks into ``directory`` (created if needed)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for which, (filename, _columns) in TEMPLATES.items():
        path = directory / filename
        path.write_bytes(template_workbook(which, section=section))
        written.append(path)
    return written
