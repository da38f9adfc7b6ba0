"""PES V2 « PES_Aller » recette ORMC (books.md §1): text normalisation, check keys, XML writer of a
rôle described as plain data, and the checker of every rule of books.md §1.2 (lengths, code lists,
sums, keys, character set) run on the bytes before a file is stored; optional validation against
the official XSD bundle an operator supplies (``PES_XSD_DIR``).

This module knows nothing of Django models: ``billing.services.pes`` builds the data (dicts) from
issued invoices and the stored rôle, this module turns it into bytes and checks them. The same data
always give the same bytes (no timestamps, fixed attribute order), so a past rôle regenerates
identically.
"""
from __future__ import annotations

import base64
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from django.core.exceptions import ValidationError
from lxml import etree

NS = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller"
ACQUIT_NS = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour/v2"
ENCODING = "ISO-8859-1"
CLE2_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXY"

# Code lists (books.md §1.2, DGFiP spec [D1] and v5.30 annotations [S1]).
CAT_TIERS = {"01", "20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "50",
             "60", "61", "62", "63", "64", "65", "70", "71", "72", "73", "74"}
NAT_JUR = {f"{n:02d}" for n in range(0, 12)}
TYP_TIERS = {f"{n:02d}" for n in range(1, 8)}
NAT_PCE = {"01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "18"}
EDITION = {"03", "04", "06", "07", "08", "09", "10"}
SEQUENCE_PRES = {"01": "OOFF", "02": "FRST", "03": "RCUR", "04": "FNAL"}
SEQUENCE_CODES = {label: code for code, label in SEQUENCE_PRES.items()}

# Characters kept in text values: capitals without accents, digits and a little punctuation.
_TEXT_ALLOWED = re.compile(r"[^A-Z0-9 '\-/.,()&:+?]")
_TEXT_CHECK = re.compile(r"^[A-Z0-9 '\-/.,()&:+?]*$")
_SEPA_CHECK = re.compile(r"^[a-zA-Z0-9/\-?:().,'+ ]*$")
_SPECIAL = {"Œ": "OE", "œ": "OE", "Æ": "AE", "æ": "AE", "ß": "SS", "’": "'", "«": "", "»": "", "–": "-", "—": "-"}
PLACEHOLDERS = {"", " ", ".", "NC", "N/C", "-"}
_AMOUNT = re.compile(r"^\d{1,12}\.\d{2}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class PesError(ValidationError):
    """A PES file or its data break a rule; ``messages`` name the block, the element and the value."""


# ---------------------------------------------------------------- text and keys

def pes_text(value: str, max_length: int) -> str:
    """Upper case without accents, only the allowed characters, single spaces, cut to ``max_length``."""
    value = "".join(_SPECIAL.get(ch, ch) for ch in str(value or ""))
    value = unicodedata.normalize("NFKD", value)
    value = "".join(ch for ch in value if not unicodedata.combining(ch)).upper()
    value = _TEXT_ALLOWED.sub(" ", value)
    return " ".join(value.split())[:max_length].strip()


def sepa_text(value: str, max_length: int) -> str:
    """Text limited to the SEPA character set (books.md §1.2), accents removed."""
    value = unicodedata.normalize("NFKD", str(value or ""))
    value = "".join(ch for ch in value if not unicodedata.combining(ch))
    value = re.sub(r"[^a-zA-Z0-9/\-?:().,'+ ]", " ", value)
    return " ".join(value.split())[:max_length].strip()


def cle1(*, cod_col: str, id_bord: int | str, exercice: int | str, per: str, num_dette: str) -> str:
    """Modulo 11 key (Noethys convention, books.md §1.2): CodCol + IdBord + AA + Per + NumDette
    left-padded to 13 digits; weights 2..7 from the rightmost digit; 11 − (Σ mod 11), 10 or 11 → 1."""
    digits = f"{cod_col}{id_bord}{str(exercice)[-2:]}{per}{str(num_dette).zfill(13)}"
    total, weight = 0, 2
    for char in reversed(digits):
        total += int(char) * weight if char.isdigit() else 0
        weight = weight + 1 if weight < 7 else 2
    key = 11 - total % 11
    return "1" if key >= 10 else str(key)


def cle2(*, exercice: int | str, per: str, num_dette: str) -> str:
    """Modulo 23 key: AA + Per + "00" + NumDette (13 digits); the letter at index n mod 23."""
    number = int(f"{str(exercice)[-2:]}{per}00{str(num_dette).zfill(13)}")
    return CLE2_LETTERS[number % 23]


def amount(value: Decimal) -> str:
    return f"{Decimal(value).quantize(Decimal('0.01')):.2f}"


# ---------------------------------------------------------------- writer

def _v(parent, tag: str, value) -> None:
    if value is None or value == "":
        return
    etree.SubElement(parent, tag, V=str(value))


def _values(parent, pairs, source: dict) -> None:
    """One ``V`` element per (tag, key) of ``source``, in order (empty values left out)."""
    for tag, key in pairs:
        _v(parent, tag, source.get(key))


_ENTETE_PES = (("DteStr", "dte_str"), ("IdPost", "id_post"), ("IdColl", "id_coll"), ("FinJur", "fin_jur"),
               ("CodCol", "cod_col"), ("CodBud", "cod_bud"), ("LibelleColBud", "libelle_col_bud"))
_INFO_TIERS = (("CatTiers", "cat_tiers"), ("NatJur", "nat_jur"), ("TypTiers", "typ_tiers"),
               ("Civilite", "civilite"), ("Nom", "nom"), ("Prenom", "prenom"))


def _write_envelope(root, envelope: dict) -> None:
    """``Enveloppe``: Parametres (Version 2, PESORMC, NomFic) and Emetteur (Sigle, Adresse)."""
    env = etree.SubElement(root, "Enveloppe")
    params = etree.SubElement(env, "Parametres")
    _v(params, "Version", "2")
    _v(params, "TypFic", "PESORMC")
    _v(params, "NomFic", envelope["nom_fic"])
    emitter = etree.SubElement(env, "Emetteur")
    _v(emitter, "Sigle", envelope["sigle"])
    _v(emitter, "Adresse", envelope["adresse"])


def _write_entete_pes(root, head: dict) -> None:
    _values(etree.SubElement(root, "EnTetePES"), _ENTETE_PES, head)


def _write_recette_header(recette) -> None:
    entete_recette = etree.SubElement(recette, "EnTeteRecette")
    _v(entete_recette, "IdVer", "2")
    _v(entete_recette, "InfoDematerialisee", "0")


def _write_bloc_bordereau(bordereau, bord: dict, pieces: list[dict]) -> None:
    """``BlocBordereau``: the rôle (TypBord 06), its count of pieces and ``MtBordHt`` = Σ lines."""
    bloc = etree.SubElement(bordereau, "BlocBordereau")
    _v(bloc, "Exer", bord["exer"])
    _v(bloc, "IdBord", bord["id_bord"])
    _v(bloc, "DteBordEm", bord["dte_bord_em"])
    _v(bloc, "TypBord", "06")
    _v(bloc, "NbrPce", len(pieces))
    _v(bloc, "MtBordHt", amount(sum((Decimal(line["mt_ht"]) for p in pieces for line in p["lines"]), Decimal(0))))
    _v(bloc, "DteAsp", bord["dte_asp"])
    _v(bloc, "Objet", bord["objet"])


def _write_bloc_piece(node, piece: dict) -> None:
    """``BlocPiece``: the titre (TypPce 15), its debt and keys, and a ``PJRef`` per joined PDF."""
    bloc_piece = etree.SubElement(node, "BlocPiece")
    _v(bloc_piece, "IdPce", piece["id_pce"])
    _v(bloc_piece, "TypPce", "15")
    _v(bloc_piece, "NatPce", piece["nat_pce"])
    _v(bloc_piece, "Edition", piece.get("edition"))
    _v(bloc_piece, "ObjPce", piece["obj_pce"])
    _v(bloc_piece, "NumDette", piece["num_dette"])
    _v(bloc_piece, "Per", piece["per"])
    _v(bloc_piece, "Cle1", piece["cle1"])
    _v(bloc_piece, "Cle2", piece["cle2"])
    _v(bloc_piece, "NumeroFacture", piece["numero_facture"])
    for pj in piece.get("pj") or []:
        ref = etree.SubElement(bloc_piece, "PJRef")
        _v(ref, "Support", "01")
        _v(ref, "IdUnique", pj["id_unique"])
        _v(ref, "NomPJ", pj["nom"])


def _write_info_ligne(bloc_ligne, line: dict) -> None:
    info = etree.SubElement(bloc_ligne, "InfoLignePiece")
    _v(info, "IdLigne", line["id_ligne"])
    _v(info, "ObjLignePce", line["obj"])
    _v(info, "CodProdLoc", line["cod_prod_loc"])
    _v(info, "Nature", line["nature"])
    _v(info, "Majo", "0")
    _v(info, "TvaIntraCom", "0")
    _v(info, "MtHT", line["mt_ht"])


def _write_prelevement(bloc_ligne, sepa: dict, mt_ht: str) -> None:
    """``InfoPrelevementSEPA``: the same on every line of a titre but the amount (``MtPrel`` = the line)."""
    prel = etree.SubElement(bloc_ligne, "InfoPrelevementSEPA")
    _v(prel, "NatPrel", "01")
    _v(prel, "PerPrel", sepa["per_prel"])
    _v(prel, "DtePrel", sepa["dte_prel"])
    _v(prel, "MtPrel", mt_ht)
    _v(prel, "SequencePres", sepa["sequence"])
    _v(prel, "DateSignMandat", sepa["date_sign"])
    _v(prel, "RefUniMdt", sepa["rum"])
    _v(prel, "LibPrel", sepa["lib_prel"])


def _write_tiers(ligne, tiers: dict, sepa: dict | None) -> None:
    """``Tiers``: InfoTiers, the address, and the bank account of a debtor by direct debit."""
    tiers_node = etree.SubElement(ligne, "Tiers")
    _values(etree.SubElement(tiers_node, "InfoTiers"), _INFO_TIERS, tiers)
    address = etree.SubElement(tiers_node, "Adresse")
    _v(address, "TypAdr", "1")
    _v(address, "Adr2", tiers.get("adr2"))
    _v(address, "CP", tiers.get("cp"))
    _v(address, "Ville", tiers.get("ville"))
    _v(address, "CodRes", "0")
    if sepa:
        bank = etree.SubElement(tiers_node, "CpteBancaire")
        _v(bank, "BIC", sepa.get("bic"))
        _v(bank, "IBAN", sepa.get("iban"))
        _v(bank, "TitCpte", sepa.get("holder"))


def _write_piece(bordereau, piece: dict) -> None:
    """One ``Piece``: its BlocPiece, then per line the line, its SEPA block and the debtor."""
    node = etree.SubElement(bordereau, "Piece")
    _write_bloc_piece(node, piece)
    sepa = piece.get("sepa")
    for line in piece["lines"]:
        ligne = etree.SubElement(node, "LigneDePiece")
        bloc_ligne = etree.SubElement(ligne, "BlocLignePiece")
        _write_info_ligne(bloc_ligne, line)
        if sepa:
            _write_prelevement(bloc_ligne, sepa, line["mt_ht"])
        _write_tiers(ligne, piece["tiers"], sepa)


def _write_attachments(root, attachments: list[dict]) -> None:
    """``PES_PJ``: each joined PDF in base64 with its IdUnique, NomPJ and TypePJ."""
    pj_root = etree.SubElement(root, "PES_PJ")
    pj_head = etree.SubElement(pj_root, "EnTetePES_PJ")
    _v(pj_head, "IdVer", "1")
    for att in attachments:
        pj = etree.SubElement(pj_root, "PJ")
        content = etree.SubElement(pj, "Contenu")
        fichier = etree.SubElement(content, "Fichier", MIMEType="application/pdf")
        fichier.text = base64.b64encode(att["content"]).decode("ascii")
        _v(pj, "IdUnique", att["id_unique"])
        _v(pj, "NomPJ", att["nom"])
        _v(pj, "TypePJ", att["type"])


def pes_xml(data: dict) -> bytes:
    """The ``PES_Aller`` file of one rôle. ``data``: ``envelope`` (nom_fic, sigle, adresse),
    ``header`` (dte_str, id_post, id_coll, fin_jur, cod_col, cod_bud, libelle_col_bud),
    ``bordereau`` (exer, id_bord, dte_bord_em, dte_asp, objet), ``pieces`` (each: id_pce, nat_pce,
    edition, obj_pce, num_dette, per, cle1, cle2, numero_facture, pj (list of PJ ids), lines
    (id_ligne, obj, cod_prod_loc, nature, mt_ht), sepa (or None), tiers), ``attachments``
    (id_unique, nom, type, content bytes). Amounts are strings ``1234.56``."""
    root = etree.Element(f"{{{NS}}}PES_Aller", nsmap={"n": NS})
    _write_envelope(root, data["envelope"])
    _write_entete_pes(root, data["header"])
    recette = etree.SubElement(root, "PES_RecetteAller")
    _write_recette_header(recette)
    bordereau = etree.SubElement(recette, "Bordereau")
    _write_bloc_bordereau(bordereau, data["bordereau"], data["pieces"])
    for piece in data["pieces"]:
        _write_piece(bordereau, piece)
    if data.get("attachments"):
        _write_attachments(root, data["attachments"])
    return etree.tostring(root, xml_declaration=True, encoding=ENCODING, pretty_print=True)


# ---------------------------------------------------------------- checker

class _Checker:
    def __init__(self):
        self.errors: list[str] = []

    def err(self, where: str, tag: str, value, rule: str) -> None:
        self.errors.append(f"{where}, {tag} : « {value} » {rule}")

    def get(self, parent, tag: str, where: str, *, required=True):
        node = parent.find(tag) if parent is not None else None
        if node is None:
            if required:
                self.errors.append(f"{where} : l'élément {tag} manque.")
            return None
        value = node.get("V")
        if value is None:
            self.errors.append(f"{where} : l'élément {tag} n'a pas d'attribut V.")
        return value

    def pattern(self, parent, tag, where, regex, rule, *, required=True):
        value = self.get(parent, tag, where, required=required)
        if value is not None and not re.fullmatch(regex, value):
            self.err(where, tag, value, rule)
        return value

    def fixed(self, parent, tag, where, allowed, *, required=True):
        value = self.get(parent, tag, where, required=required)
        if value is not None and value not in allowed:
            self.err(where, tag, value, "n'est pas une valeur admise (" + ", ".join(sorted(allowed)) + ").")
        return value

    def text(self, parent, tag, where, max_length, *, required=True, sepa=False):
        value = self.get(parent, tag, where, required=required)
        if value is None:
            return None
        if len(value) > max_length:
            self.err(where, tag, value, f"dépasse {max_length} caractères ({len(value)}).")
        if value.strip().upper() in PLACEHOLDERS or re.fullmatch(r"0+", value.strip()):
            self.err(where, tag, value, "est une valeur de remplissage refusée.")
        if sepa:
            if not _SEPA_CHECK.match(value):
                self.err(where, tag, value, "contient un caractère hors du jeu SEPA (a-z A-Z 0-9 / - ? : ( ) . , ' + espace).")
        elif not _TEXT_CHECK.match(value):
            self.err(where, tag, value, "doit être en majuscules sans accent (A-Z, chiffres, espace, ' - / . , ( ) & : + ?).")
        return value

    def amount(self, parent, tag, where) -> Decimal:
        value = self.get(parent, tag, where)
        if value is None:
            return Decimal(0)
        if not _AMOUNT.match(value):
            self.err(where, tag, value, "n'est pas un montant (au plus 12 chiffres, un point, 2 décimales).")
            return Decimal(0)
        if Decimal(value) <= 0:
            self.err(where, tag, value, "doit être supérieur à 0.")
        return Decimal(value)

    def date(self, parent, tag, where, *, required=True) -> date | None:
        value = self.get(parent, tag, where, required=required)
        if value is None:
            return None
        try:
            if not _DATE.match(value):
                raise ValueError
            return date.fromisoformat(value)
        except ValueError:
            self.err(where, tag, value, "n'est pas une date AAAA-MM-JJ.")
            return None


def _check_document(c: _Checker, content: bytes):
    """Encoding declaration, well-formed XML, root ``n:PES_Aller``: the root, or None (messages added)."""
    head = content[:100].decode("ascii", "replace")
    if f'encoding="{ENCODING}"' not in head and f"encoding='{ENCODING}'" not in head:
        c.errors.append(f"Le fichier doit déclarer l'encodage {ENCODING}.")
    try:
        content.decode("latin-1")
        root = etree.fromstring(content, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    except (etree.XMLSyntaxError, ValueError) as exc:
        c.errors.append(f"Le fichier n'est pas un XML lisible : {exc}")
        return None
    if root.tag != f"{{{NS}}}PES_Aller":
        c.errors.append(f"La racine doit être n:PES_Aller de l'espace {NS} (trouvé {root.tag}).")
        return None
    return root


def _check_envelope(c: _Checker, root) -> None:
    """``Enveloppe``: Version 2, PESORMC, NomFic, emitter Sigle ≤ 32 and Adresse ≤ 38."""
    params = root.find("Enveloppe/Parametres")
    where = "Enveloppe"
    c.fixed(params, "Version", where, {"2"})
    c.fixed(params, "TypFic", where, {"PESORMC"})
    nom_fic = c.get(params, "NomFic", where)
    if nom_fic is not None and not (0 < len(nom_fic) <= 100 and re.fullmatch(r"[A-Za-z0-9_.\-]+", nom_fic)):
        c.err(where, "NomFic", nom_fic, "doit faire 1 à 100 caractères (lettres, chiffres, _ . -).")
    emitter = root.find("Enveloppe/Emetteur")
    c.text(emitter, "Sigle", where, 32)
    c.text(emitter, "Adresse", where, 38)


def _check_entete_pes(c: _Checker, root) -> str | None:
    """``EnTetePES``: date, IdPost, IdColl (SIRET), FinJur, CodCol, CodBud, libellé; returns CodCol (Cle1)."""
    entete = root.find("EnTetePES")
    where = "EnTetePES"
    c.date(entete, "DteStr", where)
    c.pattern(entete, "IdPost", where, r"\d{6,7}", "doit faire 6 ou 7 chiffres (codique du poste comptable).")
    c.pattern(entete, "IdColl", where, r"\d{14}", "doit faire 14 chiffres (SIRET).")
    c.pattern(entete, "FinJur", where, r"[0-9]{2}[0-9AB][0-9]{6}",
              "doit être un FINESS juridique de 9 caractères (obligatoire pour un ESMS en M22).")
    cod_col = c.pattern(entete, "CodCol", where, r"\d{3}", "doit faire 3 chiffres.")
    c.pattern(entete, "CodBud", where, r"[0-9A-Z][0-9]", "doit être une lettre ou un chiffre suivi d'un chiffre.")
    c.text(entete, "LibelleColBud", where, 38, required=False)
    return cod_col


def _check_entete_recette(c: _Checker, recette) -> None:
    c.fixed(recette.find("EnTeteRecette"), "IdVer", "EnTeteRecette", {"2"})
    c.fixed(recette.find("EnTeteRecette"), "InfoDematerialisee", "EnTeteRecette", {"0", "1"})


@dataclass
class _Bordereau:
    """What the checks of a bordereau's pieces need from above: keys' inputs and the joined PDFs."""

    exer: str | None
    id_bord: str | None
    cod_col: str | None
    pj_ids: set
    seen_pce: set = field(default_factory=set)


def _check_bloc_bordereau(c: _Checker, bloc, cod_col, pj_ids) -> tuple[_Bordereau, str | None, Decimal]:
    """``BlocBordereau``: exercice, rôle number, dates (DteAsp ≥ DteBordEm), TypBord 06, NbrPce, MtBordHt, Objet."""
    where = "Bordereau"
    exer = c.pattern(bloc, "Exer", where, r"\d{4}", "doit être une année sur 4 chiffres.")
    id_bord = c.pattern(bloc, "IdBord", where, r"0*[1-9]\d{0,6}", "doit être un numéro de rôle de 1 à 7 chiffres, > 0.")
    emitted = c.date(bloc, "DteBordEm", where)
    c.fixed(bloc, "TypBord", where, {"06"})
    nbr = c.pattern(bloc, "NbrPce", where, r"[1-9]\d*", "doit être au moins 1.")
    total = c.amount(bloc, "MtBordHt", where)
    asp = c.date(bloc, "DteAsp", where)
    if emitted and asp and asp < emitted:
        c.err(where, "DteAsp", asp.isoformat(), f"doit être postérieure ou égale à DteBordEm ({emitted}).")
    c.text(bloc, "Objet", where, 160)
    return _Bordereau(exer=exer, id_bord=id_bord, cod_col=cod_col, pj_ids=pj_ids), nbr, total


def _check_bloc_piece(c: _Checker, bp, index: int, bord: _Bordereau) -> str:
    """``BlocPiece``: IdPce (unique), TypPce 15, NatPce, Edition, ObjPce, NumDette, Per, both keys
    recomputed, NumeroFacture; returns the piece's place in the messages (« Pièce 3 »)."""
    id_pce = c.pattern(bp, "IdPce", f"Pièce {index}", r"0*[1-9]\d{0,7}", "doit faire 1 à 8 chiffres, > 0.")
    where = f"Pièce {id_pce or index}"
    if id_pce in bord.seen_pce:
        c.err(where, "IdPce", id_pce, "est en double dans le bordereau.")
    bord.seen_pce.add(id_pce)
    c.fixed(bp, "TypPce", where, {"15"})
    c.fixed(bp, "NatPce", where, NAT_PCE)
    c.fixed(bp, "Edition", where, EDITION, required=False)
    c.text(bp, "ObjPce", where, 160)
    dette = c.pattern(bp, "NumDette", where, r"\d{1,15}", "doit faire 1 à 15 chiffres.")
    per = c.pattern(bp, "Per", where, r"\d", "doit être un chiffre.")
    key1 = c.pattern(bp, "Cle1", where, r"\d", "doit être un chiffre.")
    key2 = c.pattern(bp, "Cle2", where, f"[{CLE2_LETTERS}]", "doit être une lettre de la clé modulo 23.")
    c.text(bp, "NumeroFacture", where, 20, required=False)
    _check_keys(c, where, bord, dette=dette, per=per, key1=key1, key2=key2)
    return where


def _check_keys(c: _Checker, where: str, bord: _Bordereau, *, dette, per, key1, key2) -> None:
    """Cle2 (modulo 23) and Cle1 (modulo 11) recomputed from the file's own values."""
    exer, id_bord, cod_col = bord.exer, bord.id_bord, bord.cod_col
    if None in (dette, per, exer) or not (dette.isdigit() and per.isdigit() and exer.isdigit()):
        return
    expected2 = cle2(exercice=exer, per=per, num_dette=dette)
    if key2 is not None and key2 != expected2:
        c.err(where, "Cle2", key2, f"est fausse (attendu {expected2}).")
    if cod_col and id_bord and cod_col.isdigit() and id_bord.isdigit():
        expected1 = cle1(cod_col=cod_col, id_bord=int(id_bord), exercice=exer, per=per, num_dette=dette)
        if key1 is not None and key1 != expected1:
            c.err(where, "Cle1", key1, f"est fausse (attendu {expected1}).")


def _check_pj_refs(c: _Checker, bp, where: str, pj_ids: set) -> None:
    """Every ``PJRef`` of a titre points at a PDF joined in ``PES_PJ`` (no BlocPiece: already reported)."""
    for ref in (bp.findall("PJRef") if bp is not None else []):
        ref_id = ref.find("IdUnique").get("V") if ref.find("IdUnique") is not None else None
        if ref_id not in pj_ids:
            c.err(where, "PJRef/IdUnique", ref_id, "ne renvoie à aucune pièce jointe PES_PJ du fichier.")


def _check_info_ligne(c: _Checker, info, where: str, seen_lines: set) -> tuple[str, Decimal]:
    """``InfoLignePiece``: IdLigne (unique in the titre), texts, CodProdLoc ≤ 4, Nature, Majo and
    TvaIntraCom 0, MtHT > 0; returns the line's place in the messages and its amount."""
    id_ligne = c.pattern(info, "IdLigne", where, r"[1-9]\d*", "doit être au moins 1.")
    lw = f"{where}, ligne {id_ligne}"
    if id_ligne in seen_lines:
        c.err(where, "IdLigne", id_ligne, "est en double dans la pièce.")
    seen_lines.add(id_ligne)
    c.text(info, "ObjLignePce", lw, 160)
    c.text(info, "CodProdLoc", lw, 4)
    c.pattern(info, "Nature", lw, r"\d{1,10}", "doit être un compte (chiffres).")
    c.fixed(info, "Majo", lw, {"0"})
    c.fixed(info, "TvaIntraCom", lw, {"0"})
    return lw, c.amount(info, "MtHT", lw)


def _check_prelevement(c: _Checker, prel, lw: str, mt: Decimal) -> tuple:
    """``InfoPrelevementSEPA``: codes, dates, ``MtPrel`` = the line, RUM and label in the SEPA
    character set; returns its values but the amount (identical on every line of a titre)."""
    pw = f"{lw}, prélèvement"
    c.fixed(prel, "NatPrel", pw, {"01"})
    c.pattern(prel, "PerPrel", pw, r"\d{2}", "doit faire 2 chiffres (07 : unique).")
    c.date(prel, "DtePrel", pw)
    mt_prel = c.amount(prel, "MtPrel", pw)
    if mt_prel != mt:
        c.err(pw, "MtPrel", mt_prel, f"diffère du montant de la ligne ({mt}).")
    c.fixed(prel, "SequencePres", pw, set(SEQUENCE_PRES))
    c.date(prel, "DateSignMandat", pw)
    c.text(prel, "RefUniMdt", pw, 35, sepa=True)
    c.text(prel, "LibPrel", pw, 140, sepa=True)
    return tuple((child.tag, child.get("V")) for child in prel if child.tag != "MtPrel")


def _check_info_tiers(c: _Checker, info_t, tw: str) -> None:
    c.fixed(info_t, "CatTiers", tw, CAT_TIERS)
    c.fixed(info_t, "NatJur", tw, NAT_JUR)
    c.fixed(info_t, "TypTiers", tw, TYP_TIERS)
    c.text(info_t, "Civilite", tw, 10, required=False)
    c.text(info_t, "Nom", tw, 38)
    c.text(info_t, "Prenom", tw, 38, required=False)


def _check_address(c: _Checker, address, tw: str) -> None:
    if address is None:
        c.errors.append(f"{tw} : l'adresse (Adresse) est obligatoire.")
        return
    c.fixed(address, "TypAdr", tw, {"1", "2", "3"})
    c.text(address, "Adr2", tw, 38)
    c.pattern(address, "CP", tw, r"\d{5}", "doit faire 5 chiffres (99999 à l'étranger).")
    c.text(address, "Ville", tw, 38)
    c.fixed(address, "CodRes", tw, {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"})


def _check_bank(c: _Checker, bank, tw: str) -> None:
    c.pattern(bank, "BIC", tw, r"[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?", "doit être un BIC en capitales.",
              required=False)
    c.pattern(bank, "IBAN", tw, r"[A-Z]{2}\d{2}[A-Z0-9]{10,30}", "doit être un IBAN en capitales sans espace.")
    c.text(bank, "TitCpte", tw, 32)


def _check_tiers(c: _Checker, tiers, lw: str, *, debited: bool) -> bytes | None:
    """``Tiers``: InfoTiers codes and names, the mandatory address, the bank account (required for a
    debtor by direct debit); returns the block's bytes (one debtor per titre), None when unreadable."""
    tw = f"{lw}, tiers"
    info_t = tiers.find("InfoTiers") if tiers is not None else None
    if info_t is None:
        c.errors.append(f"{tw} : le bloc InfoTiers manque.")
        return None
    _check_info_tiers(c, info_t, tw)
    _check_address(c, tiers.find("Adresse"), tw)
    bank = tiers.find("CpteBancaire")
    if bank is not None:
        _check_bank(c, bank, tw)
    if debited and bank is None:
        c.errors.append(f"{tw} : un débiteur prélevé doit avoir son compte (CpteBancaire).")
    return etree.tostring(tiers)


def _check_piece(c: _Checker, piece, index: int, bord: _Bordereau) -> Decimal:
    """One titre: its BlocPiece, PJ references, lines (each with its SEPA block and debtor), the same
    SEPA block and one debtor on every line; returns the sum of its lines."""
    bp = piece.find("BlocPiece")
    where = _check_bloc_piece(c, bp, index, bord)
    _check_pj_refs(c, bp, where, bord.pj_ids)
    lines = piece.findall("LigneDePiece")
    if not lines:
        c.errors.append(f"{where} : aucune ligne (LigneDePiece).")
    total, seen_lines, sepa_values, tiers_values = Decimal(0), set(), set(), set()
    for line in lines:
        lw, mt = _check_info_ligne(c, line.find("BlocLignePiece/InfoLignePiece"), where, seen_lines)
        total += mt
        prel = line.find("BlocLignePiece/InfoPrelevementSEPA")
        sepa_values.add(None if prel is None else _check_prelevement(c, prel, lw, mt))
        tiers = _check_tiers(c, line.find("Tiers"), lw, debited=prel is not None)
        if tiers is not None:
            tiers_values.add(tiers)
    if len(sepa_values) > 1:
        c.errors.append(f"{where} : toutes les lignes d'un titre portent le même prélèvement (sauf le montant).")
    if len(tiers_values) > 1:
        c.errors.append(f"{where} : un article n'a qu'un débiteur (tiers différents sur ses lignes).")
    return total


def _check_bordereau(c: _Checker, bordereau, cod_col, pj_ids: set) -> None:
    """A bordereau: its BlocBordereau, each piece, ``NbrPce`` = pieces and ``MtBordHt`` = Σ ``MtHT``."""
    bord, nbr, total = _check_bloc_bordereau(c, bordereau.find("BlocBordereau"), cod_col, pj_ids)
    pieces = bordereau.findall("Piece")
    if nbr is not None and nbr.isdigit() and int(nbr) != len(pieces):
        c.err("Bordereau", "NbrPce", nbr, f"ne correspond pas au nombre de pièces ({len(pieces)}).")
    lines_total = sum((_check_piece(c, piece, index, bord) for index, piece in enumerate(pieces, start=1)),
                      Decimal(0))
    if total is not None and lines_total != total:
        c.err("Bordereau", "MtBordHt", total, f"ne fait pas la somme des lignes ({amount(lines_total)}).")


def _joined_pj_ids(root) -> set:
    return {pj.find("IdUnique").get("V") for pj in root.findall("PES_PJ/PJ") if pj.find("IdUnique") is not None}


def pes_check(content: bytes) -> list[str]:
    """Every rule of books.md §1.2 on a PES_Aller ORMC file; returns the French messages (empty: valid)."""
    c = _Checker()
    root = _check_document(c, content)
    if root is None:
        return c.errors
    _check_envelope(c, root)
    cod_col = _check_entete_pes(c, root)
    recette = root.find("PES_RecetteAller")
    if recette is None:
        return c.errors + ["Le bloc PES_RecetteAller manque."]
    _check_entete_recette(c, recette)
    bordereaux = recette.findall("Bordereau")
    if not bordereaux:
        return c.errors + ["Le fichier ne contient aucun bordereau."]
    pj_ids = _joined_pj_ids(root)
    for bordereau in bordereaux:
        _check_bordereau(c, bordereau, cod_col, pj_ids)
    return c.errors


def pes_assert_valid(content: bytes, *, xsd_dir: str | None = None) -> None:
    """Raise ``PesError`` listing every broken rule (and the XSD errors when ``xsd_dir`` is given)."""
    errors = pes_check(content)
    if xsd_dir:
        errors += pes_xsd_errors(content, xsd_dir)
    if errors:
        raise PesError(errors)


def _xsd_root(xsd_dir: str) -> Path:
    base = Path(xsd_dir)
    for candidate in (base / "PES_V2" / "Rev0" / "PES_Aller.xsd", base / "PES_Aller.xsd"):
        if candidate.is_file():
            return candidate
    found = sorted(base.rglob("PES_Aller.xsd"))
    if not found:
        raise PesError([f"PES_XSD_DIR ({xsd_dir}) ne contient pas de PES_Aller.xsd (arborescence Schemas_PES attendue)."])
    return found[0]


def pes_xsd_errors(content: bytes, xsd_dir: str) -> list[str]:
    """Validation against the official bundle (``PES_V2/Rev0/PES_Aller.xsd`` under ``xsd_dir``)."""
    path = _xsd_root(xsd_dir)
    try:
        schema = etree.XMLSchema(etree.parse(str(path)))
    except (etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:
        return [f"Le schéma {path} ne se charge pas : {exc}"]
    document = etree.fromstring(content, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    if schema.validate(document):
        return []
    return [f"XSD ligne {e.line} : {e.message}" for e in schema.error_log]


# ---------------------------------------------------------------- acknowledgement

def acquit_parse(content: bytes) -> list[dict]:
    """The ``ElementACQUIT`` of a PES_ACQUIT (namespace-agnostic): for each, ``exercice``, ``id_bord``,
    ``ok`` (EtatAck 1), ``domain``, ``errors`` [(code, label)] and ``pieces`` {IdPce: [labels]}."""
    try:
        root = etree.fromstring(content, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise PesError([f"L'acquittement n'est pas un XML lisible : {exc}"]) from exc

    def local(node):
        return etree.QName(node).localname

    def value(node, name):
        for child in node.iter():
            if isinstance(child.tag, str) and local(child) == name:
                return child.get("V") or (child.text or "").strip()
        return None

    if local(root) != "PES_ACQUIT":
        raise PesError([f"Ce fichier n'est pas un PES_ACQUIT (racine {local(root)})."])
    elements = []
    for element in (n for n in root.iter() if isinstance(n.tag, str) and local(n) == "ElementACQUIT"):
        errors, pieces = [], {}
        for child in element:
            if not isinstance(child.tag, str):
                continue
            if local(child) == "Erreur":
                errors.append((value(child, "NumAnoAck") or "", value(child, "LibelleAnoAck") or ""))
            elif local(child) in ("DetailPiece", "DetailLigne"):
                number = value(child, "NumPiece") or value(child, "IdPce") or ""
                labels = [value(e, "LibelleAnoAck") or "" for e in child.iter()
                          if isinstance(e.tag, str) and local(e) == "Erreur"]
                if number and labels:
                    pieces.setdefault(number.lstrip("0") or "0", []).extend(labels)
        elements.append({"domain": value(element, "DomaineAck") or "", "ok": value(element, "EtatAck") == "1",
                         "id_bord": (value(element, "NumBord") or "").lstrip("0"),
                         "exercice": value(element, "ExerciceBord") or "", "errors": errors, "pieces": pieces})
    if not elements:
        raise PesError(["L'acquittement ne contient aucun ElementACQUIT."])
    return elements
