"""camt.053 bank statements: parsing (.02 and .08), matching credits to invoices by the number in the
remittance text, idempotent re-import, refusal of bad and hostile (XXE) files with a French report,
the command, the upload page (managers) and the manual matching screen (clerks, section scoping)."""
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from billing.models import Invoice, Payment
from billing.services import payments as svc
from core.models import Job
from imports.models import BankStatementEntry, ImportRun
from imports.services import bank_statement as bs
from payers.models import Payer
from structures.models import SectionAccess
from tests.billing.payment_helpers import issued_invoice, resident_in
from tests.factories import SectionAccessFactory, SectionFactory, UserFactory

D = Decimal
pytestmark = pytest.mark.django_db
NS = {"02": "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02", "08": "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"}


def entry(amount, text="", *, ref="REF1", direction="CRDT", booked="2026-03-02", version="02", name="M. DUPONT",
          status="BOOK", amount_xml=None):
    sts = f"<Sts>{status}</Sts>" if version == "02" else f"<Sts><Cd>{status}</Cd></Sts>"
    party = (f"<Dbtr><Nm>{name}</Nm></Dbtr>" if version == "02" else f"<Dbtr><Pty><Nm>{name}</Nm></Pty></Dbtr>")
    return (f"<Ntry><Amt Ccy=\"EUR\">{amount_xml or amount}</Amt><CdtDbtInd>{direction}</CdtDbtInd>{sts}"
            f"<BookgDt><Dt>{booked}</Dt></BookgDt><ValDt><Dt>{booked}</Dt></ValDt><AcctSvcrRef>{ref}</AcctSvcrRef>"
            f"<BkTxCd/><NtryDtls><TxDtls><Refs><EndToEndId>NOTPROVIDED</EndToEndId></Refs>"
            f"<RltdPties>{party}</RltdPties><RmtInf><Ustrd>{text}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>")


def statement(*entries, version="02", prolog='<?xml version="1.0" encoding="UTF-8"?>\n') -> bytes:
    body = "\n".join(entries)
    return (f"{prolog}<Document xmlns=\"{NS[version]}\"><BkToCstmrStmt><GrpHdr><MsgId>M1</MsgId>"
            f"<CreDtTm>2026-03-03T08:00:00</CreDtTm></GrpHdr><Stmt><Id>S1</Id>"
            f"<Acct><Id><IBAN>FR7630006000011234567890189</IBAN></Id></Acct>\n{body}\n</Stmt></BkToCstmrStmt>"
            f"</Document>").encode()


@pytest.fixture
def site():
    section = SectionFactory(alias="BQ-A")
    code = section.establishment.code
    other = SectionFactory(alias="BQ-B", establishment=section.establishment)
    resident = resident_in(section, last_name="DUPONT", external_ref="R-1")
    a = issued_invoice(section, resident, "100.00", date(2026, 1, 5))
    b = issued_invoice(section, resident, "150.00", date(2026, 2, 5))
    foreign = issued_invoice(other, resident_in(other, external_ref="R-9"), "70.00", date(2026, 2, 5))
    manager = UserFactory(username="mgr")
    SectionAccessFactory(user=manager, section=section, role=SectionAccess.Role.MANAGER)
    clerk = UserFactory(username="clerk")
    SectionAccessFactory(user=clerk, section=section, role=SectionAccess.Role.CLERK)
    reader = UserFactory(username="reader")
    SectionAccessFactory(user=reader, section=section, role=SectionAccess.Role.READER)
    return {"section": section, "other": other, "code": code, "resident": resident, "a": a, "b": b,
            "foreign": foreign, "manager": manager, "clerk": clerk, "reader": reader}


def _fresh(inv):
    return Invoice.objects.get(pk=inv.pk)


@pytest.mark.parametrize("version", ["02", "08"])
def test_parse_both_versions(version):
    parse = bs.statement_parse(data=statement(entry("12.50", "FACT X", version=version, name="MME A"),
                                              entry("3.00", ref="R2", direction="DBIT", version=version),
                                              entry("9.00", ref="R3", status="PDNG", version=version),
                                              version=version))
    assert parse.ok, parse.errors
    assert parse.version == version and parse.skipped == 1
    first, second = parse.lines
    assert (first.amount, first.direction, first.booking_date, first.remittance, first.counterparty, first.entry_ref,
            first.account) == (D("12.50"), "CRDT", date(2026, 3, 2), "FACT X", "MME A", "REF1",
                               "FR7630006000011234567890189")
    assert second.direction == "DBIT"


def test_invoice_numbers_found_in_remittance_text(site):
    code = site["code"]
    text = f"VIR FACT {code.lower()} 2026 000012 ET {code}-2026-000013/{code}2026000012 PAS {code}-AV-2026-000001"
    assert bs.invoice_numbers_in(text, site["section"]) == [f"{code}-2026-000012", f"{code}-2026-000013"]
    assert bs.invoice_numbers_in(f"X{code}-2026-0000123", site["section"]) == []


def test_credits_matched_recorded_and_the_rest_pending(site):
    code, a, b = site["code"], site["a"], site["b"]
    data = statement(
        entry("150.00", f"REGLEMENT FACTURE {b.number}", ref="AAA1"),
        entry("30.00", "LOYER MARS", ref="AAA2"),                       # no number
        entry("20.00", f"FACT {code}-2026-999999", ref="AAA3"),          # unknown number
        entry("45.00", "FRAIS", ref="AAA4", direction="DBIT"),           # debit
        entry("70.00", f"FACT {site['foreign'].number}", ref="AAA5"),    # another section's invoice
    )
    run = bs.statement_import_apply(section=site["section"], data=data, name="releve.xml")
    assert run.status == ImportRun.Status.IMPORTED
    assert (run.summary["matched"], run.summary["pending"]) == (1, 4)
    payment = Payment.objects.get(section=site["section"])
    assert (payment.mode, payment.reference, payment.date, payment.amount, payment.invoice_id, payment.drawer) == (
        Payment.Mode.TRANSFER, "AAA1", date(2026, 3, 2), D("150.00"), b.pk, "M. DUPONT")
    assert _fresh(b).paid_amount == D("150.00") and _fresh(a).paid_amount == D("0.00")
    reasons = dict(BankStatementEntry.objects.filter(status="pending").values_list("entry_ref", "reason"))
    assert reasons["AAA2"] == "Aucun numéro de facture dans le libellé."
    assert f"{code}-2026-999999" in reasons["AAA3"]
    assert reasons["AAA4"].startswith("Débit")
    assert "inconnue" in reasons["AAA5"]
    assert _fresh(site["foreign"]).paid_amount == D("0.00")
    # The excess of a matched transfer follows §9 (named invoice first, then oldest due).
    bs.statement_import_apply(section=site["section"], data=statement(entry("120.00", f"FACT {a.number}", ref="AAA6")))
    assert _fresh(a).paid_amount == D("100.00")


def test_importing_the_same_statement_twice_records_nothing_new(site):
    data = statement(entry("150.00", f"FACTURE {site['b'].number}", ref="BBB1"), entry("30.00", "?", ref="BBB2"))
    bs.statement_import_apply(section=site["section"], data=data)
    again = bs.statement_import_apply(section=site["section"], data=data)
    assert (again.summary["already"], again.summary["matched"], again.summary["pending"]) == (2, 0, 0)
    assert Payment.objects.count() == 1 and BankStatementEntry.objects.count() == 2
    assert _fresh(site["b"]).paid_amount == D("150.00")
    # A later statement repeating one line and adding one: only the new line is recorded.
    later = statement(entry("30.00", "?", ref="BBB2"), entry("100.00", f"{site['a'].number}", ref="BBB3"))
    run = bs.statement_import_apply(section=site["section"], data=later)
    assert (run.summary["already"], run.summary["matched"]) == (1, 1)
    assert Payment.objects.count() == 2


def test_dry_run_writes_nothing(site):
    run = bs.statement_import_apply(section=site["section"], dry_run=True,
                                    data=statement(entry("150.00", site["b"].number, ref="C1")))
    assert run.status == ImportRun.Status.VALIDATED and run.summary["matched"] == 1
    assert not Payment.objects.exists() and not BankStatementEntry.objects.exists()


@pytest.mark.parametrize("data, element, value, message", [
    (statement(entry("12,50", "x")), "Ntry/Amt", "12,50", "Montant invalide"),
    (statement(entry("-3.00", "x")), "Ntry/Amt", "-3.00", "positif"),
    (statement(entry("3.00", "x", direction="CRDX")), "Ntry/CdtDbtInd", "CRDX", "CRDT ou DBIT"),
    (statement(entry("3.00", "x", booked="2026-02-31")), "Ntry/BookgDt/Dt", "2026-02-31", "Date invalide"),
    (b"<Document><BkToCstmrStmt>", "", "", "pas un fichier XML valide"),
    (statement(entry("3.00", "x")).replace(b"camt.053.001.02", b"camt.052.001.02"), "Document",
     "urn:iso:std:iso:20022:tech:xsd:camt.052.001.02", "camt.053.001.02 ou camt.053.001.08"),
])
def test_bad_files_refused_whole_with_a_french_report(site, data, element, value, message):
    good = entry("150.00", site["b"].number, ref="OK1")
    data = data.replace(b"<Ntry>", good.encode() + b"\n<Ntry>", 1) if b"<Ntry>" in data else data
    with pytest.raises(bs.StatementImportError) as exc:
        bs.statement_import_apply(section=site["section"], data=data, name="mauvais.xml")
    run = exc.value.run
    assert run.status == ImportRun.Status.REJECTED
    errors = [(r["row"], e["column"], e["value"], e["message"]) for r in run.report for e in r["errors"]]
    assert any(col == element and val == value and message in msg for _row, col, val, msg in errors), errors
    assert all(r["file"] == "mauvais.xml" for r in run.report)
    if element.startswith("Ntry"):
        assert errors[0][0] == 4  # the bad entry: prolog 1, header 2, good entry 3
    assert not Payment.objects.exists() and not BankStatementEntry.objects.exists()


def test_hostile_files_xxe_and_entity_expansion_refused(site, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("MOT-DE-PASSE-SECRET")
    xxe = statement(entry("150.00", "&xxe;", ref="X1"),
                    prolog=f'<?xml version="1.0"?>\n<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file://{secret}">]>\n')
    laughs = statement(entry("1.00", "&l3;", ref="X2"), prolog='<?xml version="1.0"?>\n<!DOCTYPE Document ['
                       '<!ENTITY l0 "ha"><!ENTITY l1 "&l0;&l0;&l0;&l0;&l0;&l0;&l0;&l0;&l0;&l0;">'
                       '<!ENTITY l2 "&l1;&l1;&l1;&l1;&l1;&l1;&l1;&l1;&l1;&l1;">'
                       '<!ENTITY l3 "&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;">]>\n')
    for data in (xxe, laughs):
        parse = bs.statement_parse(data=data)
        assert not parse.ok and parse.errors[0]["column"] == "DOCTYPE"
        assert "interdite" in parse.errors[0]["message"]
        assert "MOT-DE-PASSE" not in str(parse.errors) and not parse.lines
        with pytest.raises(bs.StatementImportError):
            bs.statement_import_apply(section=site["section"], data=data)
    # Even without the DOCTYPE check, the parser itself never reads the file.
    from lxml import etree
    root = etree.fromstring(xxe, parser=bs._parser())
    assert "MOT-DE-PASSE" not in etree.tostring(root).decode()
    assert not Payment.objects.exists()


def test_batch_entry_split_into_transactions(site):
    a, b = site["a"], site["b"]
    tx = ("<TxDtls><Refs><AcctSvcrRef>{ref}</AcctSvcrRef></Refs><AmtDtls><TxAmt><Amt Ccy=\"EUR\">{amt}</Amt></TxAmt>"
          "</AmtDtls><RmtInf><Ustrd>{text}</Ustrd></RmtInf></TxDtls>")
    ntry = ("<Ntry><NtryRef>LOT1</NtryRef><Amt Ccy=\"EUR\">250.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>"
            "<BookgDt><Dt>2026-03-05</Dt></BookgDt><NtryDtls>" + tx.format(ref="T1", amt="100.00", text=a.number)
            + tx.format(ref="T2", amt="150.00", text=b.number) + "</NtryDtls></Ntry>")
    run = bs.statement_import_apply(section=site["section"], data=statement(ntry))
    assert run.summary["matched"] == 2
    assert set(BankStatementEntry.objects.values_list("entry_ref", flat=True)) == {"LOT1/T1", "LOT1/T2"}
    assert (_fresh(a).paid_amount, _fresh(b).paid_amount) == (D("100.00"), D("150.00"))
    bad = ntry.replace("250.00", "240.00")
    with pytest.raises(bs.StatementImportError) as exc:
        bs.statement_import_apply(section=site["section"], data=statement(bad.replace("LOT1", "LOT2")))
    assert "somme de ses transactions" in exc.value.run.report[0]["errors"][0]["message"]


def test_command(site, tmp_path, capsys):
    path = tmp_path / "releve.xml"
    path.write_bytes(statement(entry("150.00", site["b"].number, ref="K1"), entry("5.00", "?", ref="K2")))
    call_command("import_bank_statement", str(path), "--section", "BQ-A", "--dry-run")
    assert "Simulation" in capsys.readouterr().out and not Payment.objects.exists()
    call_command("import_bank_statement", str(path), "--section", "BQ-A")
    out = capsys.readouterr().out
    assert "1 virement(s) rapproché(s) pour 150,00" in out and "1 ligne(s) à rapprocher" in out
    call_command("import_bank_statement", str(path), "--section", "BQ-A")
    assert "dont 2 déjà importée(s) ; 0 virement(s)" in capsys.readouterr().out
    path.write_bytes(statement(entry("1,5", "x", ref="K3")))
    with pytest.raises(CommandError):
        call_command("import_bank_statement", str(path), "--section", "BQ-A")
    err = capsys.readouterr().err
    assert "ERREUR : releve.xml › ligne 3 › Ntry/Amt › 1,5 › Montant invalide" in err
    with pytest.raises(CommandError, match="Section inconnue"):
        call_command("import_bank_statement", str(path), "--section", "NOPE")


def _upload(client, site, data, name="releve.xml", **extra):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(reverse("imports:bank-statement", kwargs={"alias": site["section"].alias}),
                       {"file": SimpleUploadedFile(name, data, content_type="text/xml"), **extra})


def test_upload_page_managers_only(client, site):
    data = statement(entry("150.00", site["b"].number, ref="U1"))
    client.force_login(site["clerk"])
    assert _upload(client, site, data).status_code == 403
    client.force_login(site["manager"])
    assert client.get(reverse("imports:bank-statement", kwargs={"alias": "BQ-B"})).status_code == 404
    response = _upload(client, site, data)
    assert response.status_code == 200 and "1 virement(s) rapproché(s)" in response.content.decode()
    assert _fresh(site["b"]).paid_amount == D("150.00")
    response = _upload(client, site, b"<Document", name="casse.xml")
    assert response.status_code == 400 and "pas un fichier XML valide" in response.content.decode()


def test_large_statement_parsed_in_a_job(client, site, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(bs, "JOB_THRESHOLD_BYTES", 10)
    sent = []
    monkeypatch.setattr("core.tasks.run_job.delay", lambda job_id: sent.append(job_id))
    client.force_login(site["manager"])
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(client, site, statement(entry("150.00", site["b"].number, ref="J1")))
    assert response.status_code == 202
    run = ImportRun.objects.get(kind=ImportRun.Kind.BANK_STATEMENT)
    assert run.status == ImportRun.Status.PENDING and sent == [run.job_id]
    from core.tasks import run_job
    run_job(run.job_id)
    run.refresh_from_db()
    assert run.status == ImportRun.Status.IMPORTED and Job.objects.get(pk=run.job_id).status == Job.Status.SUCCEEDED
    assert _fresh(site["b"]).paid_amount == D("150.00")


def _pending(site, data):
    bs.statement_import_apply(section=site["section"], data=data)
    return {e.entry_ref: e for e in BankStatementEntry.objects.filter(status="pending")}


def test_manual_matching_screen(client, site):
    payer = Payer.objects.create(organisation=site["section"].establishment.organisation, code="CD99",
                                 name="Département 99", kind=Payer.Kind.DEPARTEMENT)
    pending = _pending(site, statement(entry("100.00", "VIR DUPONT", ref="M1"), entry("40.00", "VIR ?", ref="M2"),
                                       entry("10.00", "SUBVENTION", ref="M3"), entry("12.00", "CD 99", ref="M4")))
    url = reverse("imports:bank-statement-match", kwargs={"alias": site["section"].alias})
    client.force_login(site["reader"])
    assert "VIR DUPONT" in client.get(url).content.decode()
    assert client.post(url, {"entry": pending["M1"].pk, "invoice": site["a"].number}).status_code == 403
    client.force_login(site["clerk"])
    # Another section's invoice, resident or entry: refused.
    response = client.post(url, {"entry": pending["M1"].pk, "invoice": site["foreign"].number})
    assert response.status_code == 400 and "Facture inconnue dans la section BQ-A" in response.content.decode()
    response = client.post(url, {"entry": pending["M1"].pk, "resident": "R-9"})
    assert response.status_code == 400 and "Aucun résident de la section BQ-A" in response.content.decode()
    other_entry = _pending_other(site)
    assert client.post(url, {"entry": other_entry.pk, "invoice": site["a"].number}).status_code == 404
    response = client.post(url, {"entry": pending["M1"].pk})
    assert response.status_code == 400 and "une et une seule" in response.content.decode()
    # An invoice, a resident, a payer, set aside.
    assert client.post(url, {"entry": pending["M1"].pk, "invoice": site["a"].number.lower()}).status_code == 302
    assert _fresh(site["a"]).paid_amount == D("100.00")
    assert client.post(url, {"entry": pending["M2"].pk, "resident": "R-1"}).status_code == 302
    assert _fresh(site["b"]).paid_amount == D("40.00")
    response = client.post(url, {"entry": pending["M3"].pk, "ignore": "1"})
    assert response.status_code == 400 and "motif est obligatoire" in response.content.decode()
    assert client.post(url, {"entry": pending["M3"].pk, "ignore": "1", "reason": "Subvention ARS"}).status_code == 302
    assert client.post(url, {"entry": pending["M4"].pk, "payer": payer.pk}).status_code == 302
    statuses = dict(BankStatementEntry.objects.filter(section=site["section"]).values_list("entry_ref", "status"))
    assert statuses == {"M1": "manual", "M2": "manual", "M3": "ignored", "M4": "manual"}
    p4 = BankStatementEntry.objects.get(entry_ref="M4").payment
    assert (p4.debtor_kind, p4.payer_id, p4.reference) == ("payer", payer.pk, "M4")
    # Done once: a second post is refused.
    response = client.post(url, {"entry": pending["M1"].pk, "invoice": site["b"].number})
    assert response.status_code == 400 and "déjà été traitée" in response.content.decode()


def _pending_other(site):
    bs.statement_import_apply(section=site["other"], data=statement(entry("5.00", "?", ref="O1")))
    return BankStatementEntry.objects.get(section=site["other"])


def test_debit_matched_as_a_refund_of_a_credit(site):
    resident = site["resident"]
    svc.payment_record(section=site["section"], invoice=site["a"], on=date(2026, 2, 1), amount="300.00",
                       mode=Payment.Mode.CHEQUE)  # 50 of credit
    pending = _pending(site, statement(entry("50.00", "REMBOURSEMENT", ref="D1", direction="DBIT")))
    debtor = svc.Debtor(site["section"].pk, Invoice.DebtorKind.RESIDENT, resident_id=resident.pk)
    refund = bs.entry_match(entry=pending["D1"], debtor=debtor)
    assert refund.kind == Payment.Kind.REFUND and refund.amount == D("50.00")
    assert svc.debtor_credit(debtor) == D("0.00")
