"""PES V2 ORMC (books.md §1): keys of the test vector, the rôle of a month for a public EHPAD with a
debtor by direct debit, checker refusals (one per rule family), simulation consumes nothing,
sequential numbers, byte-identical regeneration, credit note → titre d'annulation in the next rôle,
PES PJ, XSD validation with an operator-supplied bundle, acknowledgement import, the command.

March 2026 at « Le Verger » (public, CodCol 123, rôle numbering starting at 12): Dupont's invoice is
the establishment's 17th of 2026 (dette 2026017) and she pays by direct debit, so her titre carries
exactly books.md's vector: CodCol 123, IdBord 12, 2026, Per 3, dette 0000002026017 → Cle1 2, Cle2 W.
"""
import hashlib
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError
from lxml import etree

from billing.models import Invoice, InvoiceLine, NumberSequence, PesArticleInvoice, PesCounter, PesRole, PesSettings
from billing.models import Product
from billing.services import pes as services
from billing.services.issuing import credit_note_create, invoices_issue
from billing.services.periods import period_create
from core import pes
from payers.models import Payer
from sepa.services.mandates import mandate_create
from tests.billing.payment_helpers import resident_in

D = Decimal
pytestmark = pytest.mark.django_db
ON = date(2026, 4, 2)


def test_keys_of_the_books_vector():
    assert pes.cle1(cod_col="123", id_bord=12, exercice=2026, per="3", num_dette="0000002026017") == "2"
    assert pes.cle2(exercice=2026, per="3", num_dette="0000002026017") == "W"
    # The same dette without its padding gives the same keys (padded to 13 digits).
    assert pes.cle1(cod_col="123", id_bord=12, exercice=2026, per="3", num_dette="2026017") == "2"
    assert pes.cle2(exercice="2026", per="3", num_dette="2026017") == "W"
    # A result of 10 or 11 becomes 1 (Σ mod 11 = 0 → 11 → 1).
    assert pes.cle1(cod_col="000", id_bord=0, exercice=2000, per="0", num_dette="0") == "1"


# The bytes of Le Verger's March rôle (simulated on ON), plain and with the PES PJ option and Edition 06:
# recorded before core.pes's writer and checker were split into one function per block; any change of
# the file's bytes (order, spacing, encoding, a value) must be deliberate.
GOLDEN_SHA256 = "aca3d9d5d69a1d0f4a4a58102526843cf6d789aa911eb9f972f4c41863c735c2"
GOLDEN_PJ_SHA256 = "dbb5ce1faebc6297ae37e4f11ca9df686fbeedba8caed932b76912c1030b9830"


def test_file_bytes_unchanged(verger):
    draft = services.role_simulate(period=verger["period"], on=ON)
    assert (hashlib.sha256(draft.content).hexdigest(), len(draft.content)) == (GOLDEN_SHA256, 7013)
    PesSettings.objects.filter(pk=verger["settings"].pk).update(attach_pdfs=True, edition="06")
    for key in ("a", "m", "p"):
        invoice = verger[key]
        invoice.pdf.save(f"{invoice.number}.pdf", ContentFile(b"%PDF-1.4 " + invoice.number.encode()), save=True)
    draft = services.role_simulate(period=verger["period"], on=ON)
    assert draft.errors == []
    assert (hashlib.sha256(draft.content).hexdigest(), len(draft.content)) == (GOLDEN_PJ_SHA256, 8368)


def test_text_is_upper_case_without_accents():
    assert pes.pes_text("Hélène  d'Œuvre-Façade «x» été", 60) == "HELENE D'OEUVRE-FACADE X ETE"
    assert pes.pes_text("Émile Zola " * 10, 38) == "EMILE ZOLA EMILE ZOLA EMILE ZOLA EMILE"
    assert pes.sepa_text("Frais de séjour mars 2026 ; n°17", 140) == "Frais de sejour mars 2026 n 17"


def _invoice(section, period, resident, lines, *, payer=None, relative=None):
    invoice = Invoice.objects.create(
        section=section, establishment=section.establishment, period=period,
        debtor_kind=(Invoice.DebtorKind.PAYER if payer else
                     Invoice.DebtorKind.RELATIVE if relative else Invoice.DebtorKind.RESIDENT),
        resident=resident, payer=payer, relative=relative, date_from=period.start, date_to=period.end,
        total=sum((D(a) for _p, a in lines), D("0")))
    for product, amount in lines:
        InvoiceLine.objects.create(invoice=invoice, resident=resident, product=product, label=product.label,
                                   reason="manual", date_from=period.start, date_to=period.end, quantity=D("1"),
                                   unit_price=D(amount), amount=D(amount))
    invoices_issue(invoice_ids=[invoice.pk], issue_date=period.end)
    invoice.refresh_from_db()
    return invoice


@pytest.fixture
def verger():
    from tests.factories import SectionFactory

    section = SectionFactory(alias="VER-HP", establishment__code="VER", establishment__name="EHPAD Le Verger",
                             establishment__legal_status="public", establishment__siret="26570001200018",
                             establishment__address="18 rue du Verger", establishment__postal_code="57000",
                             establishment__city="Metz")
    establishment = section.establishment
    settings = PesSettings.objects.create(
        establishment=establishment, id_post="057011", id_coll="26570001200018", fin_jur="570000018",
        cod_col="123", cod_bud="01", libelle_col_bud="EHPAD Le Verger", first_role_number=12)
    lodging = Product.objects.create(establishment=establishment, code="HEB", label="Hébergement",
                                     kind=Product.Kind.ACCOMMODATION)
    talon = Product.objects.create(establishment=establishment, code="GIR56", label="Talon GIR 5-6",
                                   kind=Product.Kind.DEPENDENCY_56)
    NumberSequence.objects.create(establishment=establishment, kind="invoice", year=2026, last_number=16)
    march = period_create(section=section, start=date(2026, 3, 1))
    dupont = resident_in(section, last_name="Dupont-Éléonore", first_name="Hélène", civility="MME",
                         address="", payment_mode="direct_debit")
    martin = resident_in(section, last_name="Martin", first_name="Paul", civility="M", payment_mode="cheque",
                         address="3 place de la Gare", postal_code="57100", city="Thionville")
    mandate = mandate_create(establishment=establishment, resident=dupont, iban="FR7630006000011234567890189",
                             bic="AGRIFRPP", account_holder="Hélène Dupont", rum="VER-RUM-0001",
                             signature_date=date(2026, 1, 15))
    departement = Payer.objects.create(organisation=establishment.organisation, code="CD57", kind="departement",
                                       name="Département de la Moselle", address="1 rue du Pont Moreau",
                                       postal_code="57000", city="Metz")
    a = _invoice(section, march, dupont, [(lodging, "1800.00"), (talon, "180.00")])
    m = _invoice(section, march, martin, [(lodging, "1500.00"), (lodging, "-100.00")])
    p = _invoice(section, march, martin, [(lodging, "600.00")], payer=departement)
    return {"section": section, "establishment": establishment, "settings": settings, "period": march, "a": a,
            "m": m, "p": p, "dupont": dupont, "martin": martin, "mandate": mandate, "lodging": lodging}


def _tree(content: bytes):
    return etree.fromstring(content)


def _v(node, path):
    found = node.find(path)
    return None if found is None else found.get("V")


def test_role_of_a_month_for_le_verger(verger):
    role = services.role_generate(period=verger["period"], on=ON)
    content = bytes(role.content)
    assert content.startswith(b"<?xml version='1.0' encoding='ISO-8859-1'?>")
    assert pes.pes_check(content) == []
    root = _tree(content)
    assert root.tag == f"{{{pes.NS}}}PES_Aller"
    assert _v(root, "Enveloppe/Parametres/TypFic") == "PESORMC"
    assert _v(root, "Enveloppe/Parametres/NomFic") == role.nom_fic == "PESORMC_26570001200018_01_2026_0000012.xml"
    assert [_v(root, f"EnTetePES/{t}") for t in ("IdPost", "IdColl", "FinJur", "CodCol", "CodBud")] == [
        "057011", "26570001200018", "570000018", "123", "01"]
    bloc = root.find("PES_RecetteAller/Bordereau/BlocBordereau")
    assert [_v(bloc, t) for t in ("Exer", "IdBord", "TypBord", "NbrPce", "MtBordHt", "DteBordEm", "DteAsp")] == [
        "2026", "12", "06", "3", "3980.00", "2026-04-02", "2026-04-02"]
    assert _v(bloc, "Objet") == "FRAIS DE SEJOUR MARS 2026"
    pieces = root.findall("PES_RecetteAller/Bordereau/Piece")
    by_invoice = {_v(p, "BlocPiece/NumeroFacture"): p for p in pieces}
    dupont = by_invoice[verger["a"].number]
    assert verger["a"].number == "VER-2026-000017"
    # books.md's test vector, in the file.
    assert [_v(dupont, f"BlocPiece/{t}") for t in ("TypPce", "NatPce", "NumDette", "Per", "Cle1", "Cle2")] == [
        "15", "01", "2026017", "3", "2", "W"]
    lines = dupont.findall("LigneDePiece")
    assert [(_v(l, "BlocLignePiece/InfoLignePiece/CodProdLoc"), _v(l, "BlocLignePiece/InfoLignePiece/Nature"),
             _v(l, "BlocLignePiece/InfoLignePiece/MtHT")) for l in lines] == [
        ("DEP", "73532", "180.00"), ("HEB", "73531", "1800.00")]
    assert _v(lines[1], "BlocLignePiece/InfoLignePiece/ObjLignePce") == "HEBERGEMENT MARS 2026"
    prel = lines[0].find("BlocLignePiece/InfoPrelevementSEPA")
    assert [_v(prel, t) for t in ("NatPrel", "PerPrel", "DtePrel", "MtPrel", "SequencePres", "DateSignMandat",
                                  "RefUniMdt")] == ["01", "07", "2026-04-17", "180.00", "02", "2026-01-15",
                                                    "VER-RUM-0001"]
    assert _v(lines[1], "BlocLignePiece/InfoPrelevementSEPA/MtPrel") == "1800.00"
    tiers = lines[0].find("Tiers")
    assert [_v(tiers, f"InfoTiers/{t}") for t in ("CatTiers", "NatJur", "TypTiers", "Civilite", "Nom", "Prenom")] == [
        "01", "01", "01", "MME", "DUPONT-ELEONORE", "HELENE"]
    # No address of her own: she lives at the establishment.
    assert [_v(tiers, f"Adresse/{t}") for t in ("Adr2", "CP", "Ville")] == ["18 RUE DU VERGER", "57000", "METZ"]
    assert [_v(tiers, f"CpteBancaire/{t}") for t in ("BIC", "IBAN", "TitCpte")] == [
        "AGRIFRPP", "FR7630006000011234567890189", "HELENE DUPONT"]
    # Martin pays by cheque: no SEPA block; his two hébergement lines make one line of 1 400,00.
    martin = by_invoice[verger["m"].number]
    assert martin.find(".//InfoPrelevementSEPA") is None and martin.find(".//CpteBancaire") is None
    assert [_v(l, "BlocLignePiece/InfoLignePiece/MtHT") for l in martin.findall("LigneDePiece")] == ["1400.00"]
    # The département: a legal person, 22/09/01, on the département's account.
    dep = by_invoice[verger["p"].number]
    assert [_v(dep, f"LigneDePiece/Tiers/InfoTiers/{t}") for t in ("CatTiers", "NatJur", "TypTiers", "Nom")] == [
        "22", "09", "01", "DEPARTEMENT DE LA MOSELLE"]
    assert _v(dep, "LigneDePiece/BlocLignePiece/InfoLignePiece/Nature") == "735221"
    # ISO-8859-1, no accent anywhere in the values.
    text = content.decode("latin-1")
    assert not any(ch in text for ch in "éèàçÉ")
    assert role.articles.count() == 3 and role.total == D("3980.00")


def test_simulation_stores_nothing_and_consumes_no_number(verger):
    draft = services.role_simulate(period=verger["period"], on=ON)
    assert draft.errors == [] and len(draft.articles) == 3
    assert PesRole.objects.count() == 0 and PesCounter.objects.count() == 0
    assert not PesArticleInvoice.objects.exists()
    role = services.role_generate(period=verger["period"], on=ON)
    assert role.id_bord == 12
    assert bytes(role.content) == draft.content  # the simulation showed exactly the file


def test_numbers_sequential_and_invoices_sent_once(verger):
    first = services.role_generate(period=verger["period"], on=ON)
    with pytest.raises(ValidationError, match="Aucune facture émise de la période"):
        services.role_generate(period=verger["period"], on=ON)
    april = period_create(section=verger["section"], start=date(2026, 4, 1))
    _invoice(verger["section"], april, verger["martin"], [(verger["lodging"], "1500.00")])
    second = services.role_generate(period=april, on=date(2026, 5, 4))
    assert (first.id_bord, second.id_bord) == (12, 13)
    assert second.nom_fic.endswith("_2026_0000013.xml")
    assert PesCounter.objects.get(establishment=verger["establishment"], exercice=2026).last_number == 13


def test_a_generated_role_is_kept(verger):
    role = services.role_generate(period=verger["period"], on=ON)
    with pytest.raises(ValidationError, match="ne se supprime pas"):
        role.delete()
    role.sha256 = "0" * 64
    with pytest.raises(ValidationError, match="ne change plus"):
        role.save()
    role.refresh_from_db()
    role.content = bytes(role.content).replace(b"MARS", b"AVRIL")
    with pytest.raises(ValidationError, match="ne change plus"):
        role.save()


def test_regenerating_a_past_role_gives_the_same_bytes(verger):
    role = services.role_generate(period=verger["period"], on=ON)
    stored = bytes(role.content)
    # Later changes to the settings and the debtor's file do not change a past rôle.
    PesSettings.objects.filter(pk=verger["settings"].pk).update(id_post="099999", objet_template="Autre {mois}")
    verger["dupont"].last_name = "Durand"
    verger["dupont"].save()
    role.refresh_from_db()
    assert services.role_render(role) == stored
    assert pes.pes_check(services.role_render(role)) == []


def test_credit_note_becomes_a_titre_d_annulation_in_the_next_role(verger):
    services.role_generate(period=verger["period"], on=ON)
    note = credit_note_create(invoice=verger["m"], lines={verger["m"].lines.first().pk: D("200.00")},
                              reason="Erreur de tarif", issue_date=date(2026, 4, 10))
    april = period_create(section=verger["section"], start=date(2026, 4, 1))
    _invoice(verger["section"], april, verger["dupont"], [(verger["lodging"], "1800.00")])
    role = services.role_generate(period=april, on=date(2026, 5, 4))
    root = _tree(bytes(role.content))
    pieces = {_v(p, "BlocPiece/NumeroFacture"): p for p in root.findall("PES_RecetteAller/Bordereau/Piece")}
    cancel = pieces[note.number]
    assert _v(cancel, "BlocPiece/TypPce") == "15" and _v(cancel, "BlocPiece/NatPce") == "06"
    assert _v(cancel, "BlocPiece/NumDette") == "2026018"  # the debt of the credited invoice VER-2026-000018
    assert _v(cancel, "LigneDePiece/BlocLignePiece/InfoLignePiece/MtHT") == "200.00"
    assert _v(cancel, "BlocPiece/ObjPce").startswith(f"ANNULATION FACTURE {verger['m'].number}")
    # A second April rôle would not repeat it.
    assert PesArticleInvoice.objects.filter(invoice=note, active=True).count() == 1


def _valid(verger):
    return services.role_simulate(period=verger["period"], on=ON).content


def _mutate(content: bytes, path: str, value: str) -> bytes:
    root = etree.fromstring(content)
    node = root.find(path)
    node.set("V", value)
    return etree.tostring(root, xml_declaration=True, encoding="ISO-8859-1")


FIRST = "PES_RecetteAller/Bordereau/Piece/BlocPiece"
LINE = "PES_RecetteAller/Bordereau/Piece/LigneDePiece"


@pytest.mark.parametrize(("path", "value", "expected"), [
    ("EnTetePES/IdPost", "57011A", "EnTetePES, IdPost : « 57011A » doit faire 6 ou 7 chiffres"),
    ("EnTetePES/IdColl", "1234", "IdColl : « 1234 » doit faire 14 chiffres"),
    ("EnTetePES/FinJur", "", "FinJur : «  » doit être un FINESS juridique"),
    ("EnTetePES/CodCol", "12", "CodCol : « 12 » doit faire 3 chiffres"),
    ("EnTetePES/CodBud", "a1", "CodBud : « a1 »"),
    ("Enveloppe/Parametres/TypFic", "PESALR1", "TypFic : « PESALR1 » n'est pas une valeur admise"),
    ("PES_RecetteAller/Bordereau/BlocBordereau/TypBord", "04", "TypBord : « 04 » n'est pas une valeur admise"),
    ("PES_RecetteAller/Bordereau/BlocBordereau/NbrPce", "4", "NbrPce : « 4 » ne correspond pas au nombre de pièces (3)"),
    ("PES_RecetteAller/Bordereau/BlocBordereau/MtBordHt", "3980.01", "MtBordHt : « 3980.01 » ne fait pas la somme"),
    ("PES_RecetteAller/Bordereau/BlocBordereau/DteAsp", "2026-04-01", "DteAsp : « 2026-04-01 » doit être postérieure"),
    ("PES_RecetteAller/Bordereau/BlocBordereau/Objet", "x" * 161, "dépasse 160 caractères"),
    (f"{FIRST}/TypPce", "13", "TypPce : « 13 » n'est pas une valeur admise"),
    (f"{FIRST}/Cle1", "5", "Cle1 : « 5 » est fausse (attendu 2)"),
    (f"{FIRST}/Cle2", "A", "Cle2 : « A » est fausse (attendu W)"),
    (f"{FIRST}/Per", "10", "Per : « 10 » doit être un chiffre"),
    (f"{FIRST}/NumDette", "1234567890123456", "NumDette : « 1234567890123456 » doit faire 1 à 15 chiffres"),
    (f"{FIRST}/ObjPce", "Frais de séjour", "doit être en majuscules sans accent"),
    (f"{FIRST}/ObjPce", ".", "est une valeur de remplissage refusée"),
    (f"{LINE}/BlocLignePiece/InfoLignePiece/MtHT", "0.00", "MtHT : « 0.00 » doit être supérieur à 0"),
    (f"{LINE}/BlocLignePiece/InfoLignePiece/MtHT", "12,50", "n'est pas un montant"),
    (f"{LINE}/BlocLignePiece/InfoLignePiece/CodProdLoc", "HEBER", "CodProdLoc : « HEBER » dépasse 4 caractères"),
    (f"{LINE}/BlocLignePiece/InfoLignePiece/Majo", "1", "Majo : « 1 » n'est pas une valeur admise"),
    (f"{LINE}/BlocLignePiece/InfoPrelevementSEPA/SequencePres", "05", "SequencePres : « 05 »"),
    (f"{LINE}/BlocLignePiece/InfoPrelevementSEPA/MtPrel", "1.00", "MtPrel : « 1.00 » diffère du montant de la ligne"),
    (f"{LINE}/BlocLignePiece/InfoPrelevementSEPA/RefUniMdt", "RUM_1", "hors du jeu SEPA"),
    (f"{LINE}/Tiers/InfoTiers/CatTiers", "99", "CatTiers : « 99 » n'est pas une valeur admise"),
    (f"{LINE}/Tiers/InfoTiers/Nom", "A" * 39, "Nom : « " + "A" * 39 + " » dépasse 38 caractères"),
    (f"{LINE}/Tiers/Adresse/CP", "5700", "CP : « 5700 » doit faire 5 chiffres"),
    (f"{LINE}/Tiers/CpteBancaire/IBAN", "fr7630006000011234567890189", "doit être un IBAN en capitales"),
])
def test_checker_refuses_each_rule(verger, path, value, expected):
    content = _mutate(_valid(verger), path, value)
    errors = pes.pes_check(content)
    assert any(expected in e for e in errors), errors
    with pytest.raises(pes.PesError):
        pes.pes_assert_valid(content)


def test_checker_refuses_structure_and_encoding(verger):
    content = _valid(verger)
    assert any("ISO-8859-1" in e for e in pes.pes_check(content.replace(b"ISO-8859-1", b"UTF-8")))
    root = etree.fromstring(content)
    line = root.find(f"{LINE}/BlocLignePiece")
    line.remove(line.find("InfoPrelevementSEPA"))
    errors = pes.pes_check(etree.tostring(root, xml_declaration=True, encoding="ISO-8859-1"))
    assert any("même prélèvement" in e for e in errors), errors
    root = etree.fromstring(content)
    tiers = root.find(f"{LINE}/Tiers")
    tiers.remove(tiers.find("Adresse"))
    errors = pes.pes_check(etree.tostring(root, xml_declaration=True, encoding="ISO-8859-1"))
    assert any("l'adresse (Adresse) est obligatoire" in e for e in errors), errors
    root = etree.fromstring(content)
    piece = root.find("PES_RecetteAller/Bordereau/Piece")
    piece.remove(piece.find("BlocPiece"))  # a message, not a crash
    errors = pes.pes_check(etree.tostring(root, xml_declaration=True, encoding="ISO-8859-1"))
    assert "Pièce 1 : l'élément IdPce manque." in errors, errors
    assert "n'est pas un XML lisible" in pes.pes_check(b"<?xml version='1.0' encoding='ISO-8859-1'?><a")[0]


def test_generation_refuses_a_bad_file_and_stores_nothing(verger):
    verger["martin"].postal_code = "571"
    verger["martin"].save()
    with pytest.raises(ValidationError, match="Martin Paul : le code postal « 571 » n'a pas 5 chiffres"):
        services.role_generate(period=verger["period"], on=ON)
    PesSettings.objects.filter(pk=verger["settings"].pk).update(cod_bud="1")  # bypassing the form
    verger["martin"].postal_code = "57100"
    verger["martin"].save()
    with pytest.raises(pes.PesError, match="CodBud"):
        services.role_generate(period=verger["period"], on=ON)
    assert not PesRole.objects.exists() and not PesCounter.objects.filter(last_number__gt=11).exists()


def test_payer_or_relative_without_address_refused(verger):
    Payer.objects.filter(pk=verger["p"].payer_id).update(address="", postal_code="", city="")
    with pytest.raises(ValidationError, match="Payeur Département de la Moselle : le code postal «  » n.a pas 5"):
        services.role_simulate(period=verger["period"], on=ON)


def test_private_establishment_or_missing_settings_refused(verger):
    from tests.factories import SectionFactory

    private = SectionFactory(establishment__legal_status="association")
    period = period_create(section=private, start=date(2026, 3, 1))
    with pytest.raises(ValidationError, match="n'est pas public"):
        services.role_simulate(period=period)
    verger["settings"].delete()
    with pytest.raises(ValidationError, match="Renseignez d'abord les paramètres PES"):
        services.role_simulate(period=verger["period"])


def test_pes_pj_joins_the_invoice_pdfs(verger):
    PesSettings.objects.filter(pk=verger["settings"].pk).update(attach_pdfs=True)
    with pytest.raises(ValidationError, match="n'est pas encore produit"):
        services.role_simulate(period=verger["period"], on=ON)
    for key in ("a", "m", "p"):
        invoice = verger[key]
        invoice.pdf.save(f"{invoice.number}.pdf", ContentFile(b"%PDF-1.4 " + invoice.number.encode()), save=True)
    role = services.role_generate(period=verger["period"], on=ON)
    root = _tree(bytes(role.content))
    pjs = root.findall("PES_PJ/PJ")
    assert [_v(pj, "NomPJ") for pj in pjs] == sorted(f"{verger[k].number}.pdf" for k in ("a", "m", "p"))
    import base64
    assert base64.b64decode(pjs[0].find("Contenu/Fichier").text).startswith(b"%PDF-1.4 VER-2026")
    assert _v(root, f"{FIRST}/PJRef/IdUnique") == _v(pjs[0], "IdUnique")
    assert services.role_render(role) == bytes(role.content)


FAKE_XSD = """<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="{ns}" elementFormDefault="unqualified">
  <xs:element name="PES_Aller">
    <xs:complexType><xs:sequence>
      <xs:element name="Enveloppe"><xs:complexType><xs:sequence>
        <xs:any processContents="skip" maxOccurs="unbounded"/></xs:sequence></xs:complexType></xs:element>
      <xs:element name="EnTetePES"><xs:complexType><xs:sequence>
        <xs:any processContents="skip" maxOccurs="unbounded"/></xs:sequence></xs:complexType></xs:element>
      <xs:element name="PES_RecetteAller"><xs:complexType><xs:sequence>
        <xs:any processContents="skip" maxOccurs="{max}"/></xs:sequence></xs:complexType></xs:element>
    </xs:sequence></xs:complexType>
  </xs:element>
</xs:schema>"""


def test_xsd_bundle_when_pes_xsd_dir_is_set(verger, tmp_path, settings):
    good, bad = tmp_path / "good", tmp_path / "bad"
    for folder, maximum in ((good, "unbounded"), (bad, "1")):
        (folder / "PES_V2" / "Rev0").mkdir(parents=True)
        (folder / "PES_V2" / "Rev0" / "PES_Aller.xsd").write_text(FAKE_XSD.format(ns=pes.NS, max=maximum))
    settings.PES_XSD_DIR = str(good)
    role = services.role_generate(period=verger["period"], on=ON)
    assert role.id_bord == 12
    PesArticleInvoice.objects.all().update(active=False)  # free the invoices to build again
    settings.PES_XSD_DIR = str(bad)
    with pytest.raises(pes.PesError, match="XSD ligne"):
        services.role_generate(period=verger["period"], on=ON)
    settings.PES_XSD_DIR = str(tmp_path / "empty")
    Path(settings.PES_XSD_DIR).mkdir()
    with pytest.raises(pes.PesError, match="ne contient pas de PES_Aller.xsd"):
        services.role_generate(period=verger["period"], on=ON)


def _acquit(ok: bool, id_bord="12", exercice="2026", detail=True) -> bytes:
    errors = ("" if ok else
              "<Erreur><NumAnoAck V='402'/><LibelleAnoAck V='Compte nature 73532 inconnu'/></Erreur>")
    pieces = ("" if ok or not detail else
              "<DetailPiece><NumPiece V='1'/><Erreur><NumAnoAck V='12'/>"
              "<LibelleAnoAck V='Adresse du debiteur incomplete'/></Erreur></DetailPiece>")
    return (f"<?xml version='1.0' encoding='ISO-8859-1'?><n:PES_ACQUIT xmlns:n='{pes.ACQUIT_NS}'>"
            f"<ElementACQUIT><DomaineAck V='PES_RecetteAller'/><EtatAck V='{1 if ok else 0}'/>"
            f"<NumBord V='{id_bord}'/><ExerciceBord V='{exercice}'/>{errors}{pieces}</ElementACQUIT>"
            f"</n:PES_ACQUIT>").encode("latin-1")


def test_acquit_accepts_or_rejects_the_role(verger):
    role = services.role_generate(period=verger["period"], on=ON)
    [result] = services.acquit_import(content=_acquit(True))
    role.refresh_from_db()
    assert result.accepted and role.status == PesRole.Status.ACCEPTED and role.ack_reason == ""
    services.acquit_import(content=_acquit(False))
    role.refresh_from_db()
    assert role.status == PesRole.Status.REJECTED
    assert "402 Compte nature 73532 inconnu" in role.ack_reason
    assert "Titre 1 : Adresse du debiteur incomplete" in role.ack_reason
    assert role.articles.get(id_pce=1).ack_error == "Adresse du debiteur incomplete"
    # Rejected: its invoices go into the next rôle, under a new number.
    again = services.role_generate(period=verger["period"], on=ON)
    assert again.id_bord == 13 and again.articles.count() == 3
    with pytest.raises(ValidationError, match="aucun rôle n° 99 de l'exercice 2026"):
        services.acquit_import(content=_acquit(True, id_bord="99"))
    with pytest.raises(pes.PesError, match="n'est pas un PES_ACQUIT"):
        services.acquit_import(content=b"<PES_Aller/>")


def test_export_pes_command(verger, tmp_path, capsys):
    out = tmp_path / "role.xml"
    call_command("export_pes", "--section", "VER-HP", "--month", "2026-03", "-o", str(out), "--simulate")
    assert not PesRole.objects.exists() and pes.pes_check(out.read_bytes()) == []
    call_command("export_pes", "--section", "VER-HP", "--month", "2026-03", "-o", str(out))
    role = PesRole.objects.get()
    assert out.read_bytes() == bytes(role.content)
    # Asking again writes the stored rôle again, byte for byte, with --role.
    out.unlink()
    call_command("export_pes", "--section", "VER-HP", "--role", "12", "--exercice", "2026", "-o", str(out))
    assert out.read_bytes() == bytes(role.content)
    with pytest.raises(CommandError, match="Section inconnue : « NOPE »"):
        call_command("export_pes", "--section", "NOPE", "--month", "2026-03")
    with pytest.raises(CommandError, match="Mois invalide"):
        call_command("export_pes", "--section", "VER-HP", "--month", "2026-13")
    with pytest.raises(CommandError, match="Aucune facture émise"):
        call_command("export_pes", "--section", "VER-HP", "--month", "2026-03")
    acquit = tmp_path / "acquit.xml"
    acquit.write_bytes(_acquit(True))
    call_command("import_pes_acquit", str(acquit))
    role.refresh_from_db()
    assert role.status == PesRole.Status.ACCEPTED
