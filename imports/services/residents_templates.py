"""Template workbooks for the residents import: the right headers on row 1 (mandatory ones in bold
on a coloured background), one example row, and a « Notes » sheet explaining every column in French.

Downloadable from the browser (``imports:residents-template``) and written by
``manage.py import_residents --template DIR``.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

from django.utils.translation import gettext as _

from core.exports import DATE_FORMAT, TEXT_FORMAT, XlsxWriter

from .residents_import import RELATIVE_COLUMNS, RESIDENT_COLUMNS

TEMPLATES = {
    "residents": ("modele_residents.xlsx", RESIDENT_COLUMNS),
    "proches": ("modele_proches.xlsx", RELATIVE_COLUMNS),
}
TEXT_COLUMNS = {"NUMERO", "REF_EXTERNE", "NIR", "CODE_POSTAL", "TELEPHONE", "IBAN", "BIC", "RUM", "CHAMBRE"}
DATE_COLUMNS = {"DATE_NAISSANCE", "DATE_ENTREE", "DATE_SIGNATURE_MANDAT", "DERNIER_PRELEVEMENT"}
MANDATORY_FILL, OPTIONAL_FILL = "FFE2B6", "E8EEF7"

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
    """The template workbook ``which`` ("residents" or "proches") as XLSX bytes (through the one writer:
    the example codes typed by users are never formulas)."""
    _filename, columns = TEMPLATES[which]
    values = _example_values(which, section)
    writer = XlsxWriter()
    writer.sheet(_("Résidents") if which == "residents" else _("Proches"), freeze="A2",
                 widths=[max(12, len(column.name) + 4) for column in columns])
    writer.append([writer.cell(column.name, bold=column.mandatory, fill=MANDATORY_FILL if column.mandatory
                               else OPTIONAL_FILL, comment=_help(column)) for column in columns])
    # Empty example cells keep their format: what the user types there stays text (or a date).
    writer.append([writer.cell(None if values.get(column.name) == "" else values.get(column.name),
                               number_format=TEXT_FORMAT if column.name in TEXT_COLUMNS
                               else DATE_FORMAT if column.name in DATE_COLUMNS else None) for column in columns])

    writer.sheet(_("Notes"), widths=(26, 13, 100, 28))
    writer.append([writer.cell(_("Import des résidents — fichier des résidents") if which == "residents"
                               else _("Import des résidents — fichier des proches (facultatif)"), bold=True, size=14)])
    writer.append([])
    for text in GENERAL_NOTES:
        writer.append(["•", writer.cell(_(text), wrap=True)], height=30, merge=(2, 4))
    writer.append([])
    writer.append([writer.cell(header, bold=True) for header in (_("Colonne"), _("Obligatoire"), _("Règle"),
                                                                  _("Exemple"))])
    for column in columns:
        writer.append([writer.cell(column.name + (" *" if column.mandatory else ""), bold=column.mandatory),
                       _("Oui") if column.mandatory else _("Non"), writer.cell(column.help, wrap=True),
                       _example_text(values.get(column.name))])
    return writer.to_bytes()


def _example_text(value) -> str | None:
    if value in (None, ""):
        return None
    return value.strftime("%d/%m/%Y") if isinstance(value, date) else str(value)


def _help(column) -> str:
    return ("* " + _("Obligatoire.") + " " if column.mandatory else "") + column.help


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
