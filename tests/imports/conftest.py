"""Helpers for the import tests: small XLSX files built on the fly, a manager of Les Tilleuls."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from imports.services.residents_import import RELATIVE_COLUMNS, RESIDENT_COLUMNS

RESIDENT_HEADERS = [c.name for c in RESIDENT_COLUMNS]
RELATIVE_HEADERS = [c.name for c in RELATIVE_COLUMNS]

VALID_IBAN = "FR7630006000011234567890189"
# Same bank and account, RIB key 88 instead of 89, IBAN check digits recomputed: only the RIB key is wrong.
BAD_RIB_KEY_IBAN = "FR0630006000011234567890188"


def nir(serial: int = 1, *, female: bool = True, year: int = 1938, month: int = 4) -> str:
    body = f"{2 if female else 1}{year % 100:02d}{month:02d}69123{serial % 1000:03d}"
    return f"{body}{97 - int(body) % 97:02d}"


def resident_row(n: int = 1, **overrides) -> dict:
    row = {
        "NUMERO": str(n), "SECTION": "TIL-HP", "REF_EXTERNE": f"EXT-{n:04d}", "CIVILITE": "MME",
        "NOM": "Müller-Élodie d'Arçy", "NOM_NAISSANCE": "Dupont", "PRENOM": "Hélène",
        "DATE_NAISSANCE": date(1938, 4, 12), "LIEU_NAISSANCE": "Lyon", "NIR": nir(n),
        "ADRESSE": "12 rue des Lilas", "CODE_POSTAL": "69003", "VILLE": "Lyon", "TELEPHONE": "04 78 00 00 00",
        "EMAIL": "", "DATE_ENTREE": date(2026, 11, 2), "HEBERGEMENT": "STD", "CHAMBRE": str(100 + n), "GIR": 3,
        "DOMICILE_SECOURS": "",
        "PAYEUR": "CD69", "AIDE_SOCIALE": 0, "MODE_REGLEMENT": "CHEQUE", "IBAN": "", "BIC": "",
        "TITULAIRE_COMPTE": "", "RUM": "", "DATE_SIGNATURE_MANDAT": "", "DERNIER_PRELEVEMENT": "",
    }
    row.update(overrides)
    return row


def relative_row(numero: int | str = 1, **overrides) -> dict:
    row = {"NUMERO": str(numero), "CIVILITE": "M", "NOM": "Müller", "PRENOM": "Étienne", "LIEN": "FILS",
           "ADRESSE": "3 place Bellecour", "CODE_POSTAL": "69002", "VILLE": "Lyon", "TELEPHONE": "06 12 34 56 78",
           "EMAIL": "etienne.muller@example.org", "DESTINATAIRE_FACTURES": 1, "TUTEUR": 0, "PAYEUR": 0, "IBAN": "",
           "BIC": "", "TITULAIRE_COMPTE": "", "RUM": "", "DATE_SIGNATURE_MANDAT": "", "DERNIER_PRELEVEMENT": ""}
    row.update(overrides)
    return row


def write_xlsx(path: Path, rows: list[dict] | list[list], headers: list[str] | None = None, *,
               title: str = "Résidents", before=None, after=None) -> Path:
    """Rows as dicts (values by header; "" and None give empty cells) or as raw lists."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = title
    if before:
        before(sheet)
    if headers is not None:
        sheet.append(headers)
    for row in rows:
        if isinstance(row, dict):
            keys = headers or list(row)
            sheet.append([None if row.get(h) == "" else row.get(h) for h in keys])
        else:
            sheet.append(row)
    if after:
        after(sheet)
    path = Path(path)
    book.save(path)
    return path


@pytest.fixture
def files(tmp_path):
    """``files.residents([...])`` / ``files.relatives([...])`` write residents.xlsx / proches.xlsx."""

    class Files:
        def residents(self, rows, headers=None, name="residents.xlsx", **kw):
            return write_xlsx(tmp_path / name, rows, headers or RESIDENT_HEADERS, **kw)

        def relatives(self, rows, headers=None, name="proches.xlsx", **kw):
            return write_xlsx(tmp_path / name, rows, headers or RELATIVE_HEADERS, title="Proches", **kw)

        def raw(self, name: str, content: bytes) -> Path:
            path = tmp_path / name
            path.write_bytes(content)
            return path

    return Files()


@pytest.fixture
def manager(demo):
    """A responsable of Les Tilleuls (TIL-HP and TIL-HT), reader of Le Verger (VER-HP)."""
    from structures.models import SectionAccess
    from tests.factories import UserFactory

    user = UserFactory(username="resp-tilleuls")
    for alias, role in (("TIL-HP", "manager"), ("TIL-HT", "manager"), ("VER-HP", "reader")):
        SectionAccess.objects.create(user=user, section=demo["sections"][alias], role=role)
    return user
