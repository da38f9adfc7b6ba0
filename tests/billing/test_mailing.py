"""Invoices by e-mail (services and the send_invoices command) against a real SMTP server:
recipients, placeholders, the invoice PDF attached byte for byte, the envelope in the journal,
running twice, failures and their explanations."""
from datetime import date

import pytest
from django.core.management import CommandError, call_command

from billing.models import Invoice
from billing.services import mailing as mail_services
from billing.services.generation import period_generate
from billing.services.issuing import period_issue
from mailing.models import MailCampaign, OutgoingMessage
from payers.models import Payer
from residents.models import Relative, Resident
from tests.factories import RelativeFactory
from tests.mailing.servers import Handler, SmtpServer

APRIL = (date(2026, 4, 1), date(2026, 4, 30))


@pytest.fixture
def mail_setup(billing_setup):
    """April 2026 issued for three residents: MARTIN (own address + guardian + invoice recipient),
    DURAND (invoice recipient only), LEROY (no address at all)."""
    setup = billing_setup
    est = setup.establishment
    est.name, est.sender_name, est.sender_email = "EHPAD Les Exemples", "Facturation", "facturation@exemples.example"
    est.save()
    org = est.organisation
    org.mail_delay_seconds, org.mail_pause_every, org.mail_pause_seconds = 0, 0, 0
    org.save()
    people = {}
    for name, email in [("Martin", "jeanne.martin@example.org"), ("Durand", ""), ("Leroy", "")]:
        stay = setup.stay(gir=6)
        Resident.objects.filter(pk=stay.resident_id).update(last_name=name, first_name="Jeanne", email=email)
        people[name] = stay.resident
    RelativeFactory(resident=people["Martin"], email="tuteur@example.org", is_guardian=True, last_name="Tuteur")
    RelativeFactory(resident=people["Martin"], email="fille@example.org", receives_invoices=True, last_name="Martin")
    RelativeFactory(resident=people["Martin"], email="neveu@example.org", last_name="Neveu")
    RelativeFactory(resident=people["Durand"], email="fils.durand@example.org", receives_invoices=True)
    RelativeFactory(resident=people["Leroy"], email="", receives_invoices=True)
    period = setup.period(*APRIL, label="Avril 2026")
    period_generate(period=period)
    period_issue(period=period, issue_date=date(2026, 5, 2))
    invoices = {name: Invoice.objects.get(period=period, resident=resident) for name, resident in people.items()}
    return {"setup": setup, "period": period, "invoices": invoices, "people": people, "organisation": org}


def _point_to(org, server):
    org.smtp_host, org.smtp_port, org.smtp_security = "127.0.0.1", server.port, "none"
    org.save()


# --- Recipients ----------------------------------------------------------------------------------
def test_resident_invoice_goes_to_resident_guardian_and_invoice_recipient(mail_setup):
    invoice = mail_setup["invoices"]["Martin"]
    recipients = mail_services.invoice_recipients(invoice)
    assert [r.email for r in recipients] == ["jeanne.martin@example.org", "tuteur@example.org", "fille@example.org"]
    assert [r.role for r in recipients] == ["résident", "tuteur / représentant légal", "destinataire des factures"]


def test_the_same_address_is_listed_once(mail_setup):
    invoice = mail_setup["invoices"]["Martin"]
    Relative.objects.filter(resident=invoice.resident, is_guardian=True).update(email="Jeanne.Martin@example.org")
    assert [r.email for r in mail_services.invoice_recipients(invoice)] == ["jeanne.martin@example.org",
                                                                           "fille@example.org"]


def test_relative_and_payer_invoices(mail_setup):
    resident = mail_setup["people"]["Durand"]
    relative = Relative.objects.get(resident=resident)
    by_relative = Invoice(debtor_kind=Invoice.DebtorKind.RELATIVE, resident=resident, relative=relative)
    assert [r.email for r in mail_services.invoice_recipients(by_relative)] == ["fils.durand@example.org"]
    payer = Payer.objects.first()
    payer.email = "apa@departement.example"
    by_payer = Invoice(debtor_kind=Invoice.DebtorKind.PAYER, payer=payer)
    assert [(r.email, r.role) for r in mail_services.invoice_recipients(by_payer)] == [
        ("apa@departement.example", "payeur")]
    payer.email = ""
    assert mail_services.invoice_recipients(by_payer) == []


def test_period_rows_list_invoices_without_address_apart(mail_setup):
    rows, without = mail_services.period_mailing_rows(mail_setup["period"])
    assert {row.invoice.resident.last_name for row in rows} == {"Martin", "Durand"}
    assert [(row.invoice.resident.last_name, row.reason) for row in without] == [("Leroy", "aucune adresse e-mail")]


def test_placeholders_of_an_invoice(mail_setup):
    invoice = mail_setup["invoices"]["Martin"]
    text = "Ci-joint la facture de &personne pour la période de &periode : {numero}, {montant}, {etablissement}"
    assert mail_services.render_for_invoice(text, invoice) == (
        f"Ci-joint la facture de MARTIN Jeanne pour la période de avril 2026 : {invoice.number}, "
        f"2\u202f130,00\u00a0€, EHPAD Les Exemples")


# --- A period's campaign through the job --------------------------------------------------------------
def test_campaign_sends_each_invoice_with_its_pdf_and_marks_the_journal(mail_setup, eager_celery,
                                                                        django_capture_on_commit_callbacks):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    invoices = mail_setup["invoices"]
    assert not invoices["Martin"].pdf  # rendered by the sending worker
    general = {"path": default_storage.save("mailing/t/lettre.pdf", ContentFile(b"%PDF lettre")),
               "filename": "lettre.pdf", "mimetype": "application/pdf", "size": 11}
    personal = {"path": default_storage.save("mailing/t/perso.txt", ContentFile(b"note perso")),
                "filename": "perso.txt", "mimetype": "text/plain", "size": 10}
    with SmtpServer() as server:
        _point_to(mail_setup["organisation"], server)
        with django_capture_on_commit_callbacks(execute=True):
            campaign = mail_services.period_campaign_send(
                period=mail_setup["period"], invoice_ids=[i.pk for i in invoices.values()],
                subject="Facture {numero} — &periode", read_receipt=True,
                body="Ci-joint la facture de &personne pour la période de &periode ({montant}).",
                general_attachments=[general], individual_attachments={invoices["Durand"].pk: [personal]})
    assert campaign.context["no_address"] == [invoices["Leroy"].number]
    assert campaign.messages.count() == 2
    campaign.job.refresh_from_db()
    assert campaign.job.status == "succeeded"
    assert campaign.job.result["sent"] == 2 and campaign.job.message == "2 envoyé(s), 0 échec(s), 0 restant(s)"
    by_subject = {r.message["Subject"]: r for r in server.received}
    martin, durand = invoices["Martin"], invoices["Durand"]
    assert set(by_subject) == {f"Facture {martin.number} — avril 2026", f"Facture {durand.number} — avril 2026"}
    received = by_subject[f"Facture {martin.number} — avril 2026"]
    assert received.rcpt_tos == ["jeanne.martin@example.org", "tuteur@example.org", "fille@example.org"]
    mime = received.message
    assert mime["From"] == "Facturation <facturation@exemples.example>"
    assert mime["Disposition-Notification-To"] == "facturation@exemples.example"
    body = mime.get_body(("plain",)).get_content()
    assert "Ci-joint la facture de MARTIN Jeanne pour la période de avril 2026 (2\u202f130,00\u00a0€)." in body
    martin.refresh_from_db()
    with martin.pdf.open("rb") as handle:
        stored = handle.read()
    files = {part.get_filename(): part.get_content() for part in mime.iter_attachments()}
    assert files == {f"{martin.number}.pdf": stored, "lettre.pdf": b"%PDF lettre"}
    assert stored.startswith(b"%PDF")
    durand_files = {p.get_filename() for p in by_subject[f"Facture {durand.number} — avril 2026"].message
                    .iter_attachments()}
    assert durand_files == {f"{durand.number}.pdf", "lettre.pdf", "perso.txt"}
    # The envelope of the journal: last_sent_at set by mailing's signal, for sent invoices only.
    for name in ("Martin", "Durand"):
        invoices[name].refresh_from_db()
        message = OutgoingMessage.objects.get(related_key=mail_services.invoice_key(invoices[name]))
        assert invoices[name].last_sent_at == message.sent_at
    invoices["Leroy"].refresh_from_db()
    assert invoices["Leroy"].last_sent_at is None


def test_campaign_needs_a_sender_and_known_placeholders(mail_setup):
    from django.core.exceptions import ValidationError

    period, ids = mail_setup["period"], [i.pk for i in mail_setup["invoices"].values()]
    with pytest.raises(ValidationError, match="Mot-clé inconnu"):
        mail_services.period_campaign_create(period=period, invoice_ids=ids, subject="Facture {numéro}", body="x")
    establishment = mail_setup["setup"].establishment
    establishment.sender_email = ""
    establishment.save()
    with pytest.raises(ValidationError, match="adresse de l'expéditeur"):
        mail_services.period_campaign_create(period=period, invoice_ids=ids, subject="s", body="b")
    assert not OutgoingMessage.objects.exists()


def test_one_invoice_to_chosen_addresses(mail_setup, eager_celery, django_capture_on_commit_callbacks):
    invoice = mail_setup["invoices"]["Martin"]
    candidates = [c.email for c in mail_services.invoice_candidate_addresses(invoice)]
    assert candidates == ["jeanne.martin@example.org", "tuteur@example.org", "fille@example.org", "neveu@example.org"]
    with SmtpServer() as server:
        _point_to(mail_setup["organisation"], server)
        with django_capture_on_commit_callbacks(execute=True):
            campaign = mail_services.invoice_send(invoice=invoice, recipients=["neveu@example.org", "autre@example.org"],
                                                  subject="Votre facture {numero}", body="Bonjour")
    assert campaign.kind == MailCampaign.Kind.SINGLE
    [received] = server.received
    assert received.rcpt_tos == ["neveu@example.org", "autre@example.org"]
    assert received.message["Subject"] == f"Votre facture {invoice.number}"


# --- The command ----------------------------------------------------------------------------------
def _command(*args):
    import io

    out = io.StringIO()
    call_command("send_invoices", *args, stdout=out)
    return out.getvalue()


def test_send_invoices_dry_run_then_real_then_again(mail_setup):
    alias = mail_setup["setup"].section.alias
    invoices = mail_setup["invoices"]
    with SmtpServer() as server:
        _point_to(mail_setup["organisation"], server)
        dry = _command("--section", alias, "--month", "2026-04", "--dry-run")
        assert "2 facture(s) à envoyer" in dry and "1 sans adresse" in dry
        assert f"SANS ADRESSE  {invoices['Leroy'].number} LEROY Jeanne : aucune adresse e-mail" in dry
        assert "Simulation : rien n'a été envoyé." in dry
        assert server.received == [] and not OutgoingMessage.objects.exists()

        first = _command("--section", alias, "--month", "2026-04")
        assert "Bilan : 2 envoyé(s), 0 échec(s), 0 à vérifier, 0 non envoyé(s), 1 sans adresse." in first
        assert f"ENVOYÉ        {invoices['Martin'].number} — MARTIN Jeanne → jeanne.martin@example.org" in first
        assert len(server.received) == 2

        second = _command("--section", alias, "--month", "2026-04")
        assert "0 facture(s) à envoyer, 0 message(s) déjà en file" in second
        assert len(server.received) == 2  # never twice
    assert MailCampaign.objects.filter(kind=MailCampaign.Kind.COMMAND).count() == 1


def test_send_invoices_exits_non_zero_with_the_explanation(mail_setup):
    alias = mail_setup["setup"].section.alias
    handler = Handler(rcpt_replies={"fils.durand@example.org": "550 5.1.1 <fils.durand@example.org> unknown"})
    with SmtpServer(handler) as server:
        _point_to(mail_setup["organisation"], server)
        import io

        out = io.StringIO()
        with pytest.raises(CommandError, match="1 message\\(s\\) en échec"):
            call_command("send_invoices", "--section", alias, "--month", "2026-04", stdout=out)
        text = out.getvalue()
        assert "ÉCHEC" in text and "inexistante ou boîte indisponible (550)" in text
        assert len(server.received) == 1
        # The failed one is queued again by the next run (never sent successfully); the sent one is not.
        handler.rcpt_replies.clear()
        again = _command("--section", alias, "--month", "2026-04")
        assert "1 facture(s) à envoyer" in again
        assert len(server.received) == 2


def test_send_invoices_finishes_what_an_interrupted_run_left(mail_setup):
    """A run killed after queueing (nothing sent): the next run sends the pending messages without
    queueing the invoices again."""
    period = mail_setup["period"]
    alias = mail_setup["setup"].section.alias
    mail_services.period_campaign_create(period=period, invoice_ids=[i.pk for i in mail_setup["invoices"].values()],
                                         subject="s {numero}", body="b", kind=MailCampaign.Kind.COMMAND)
    with SmtpServer() as server:
        _point_to(mail_setup["organisation"], server)
        out = _command("--section", alias, "--month", "2026-04")
    assert "0 facture(s) à envoyer, 2 message(s) déjà en file" in out
    assert len(server.received) == 2
    assert OutgoingMessage.objects.count() == 2


def test_send_invoices_unknown_section(db):
    with pytest.raises(CommandError, match="Section inconnue"):
        call_command("send_invoices", "--section", "NOPE", "--month", "2026-04")


def test_unknown_month(mail_setup):
    with pytest.raises(CommandError, match="Aucune période de mars 2026"):
        call_command("send_invoices", "--section", mail_setup["setup"].section.alias, "--month", "2026-03")


def test_campaign_counts_before_sending(mail_setup):
    from mailing.services.outbox import campaign_counts

    campaign = mail_services.period_campaign_create(period=mail_setup["period"],
                                                    invoice_ids=[i.pk for i in mail_setup["invoices"].values()],
                                                    subject="s", body="b")
    counts = campaign_counts(campaign)
    assert (counts["total"], counts["queued"], counts["remaining"], counts["sent"]) == (2, 2, 2, 0)


def test_send_invoices_output_is_not_flooded_by_pdf_rendering_logs(mail_setup, caplog, capfd):
    """WeasyPrint / fontTools log each rendering step at INFO: the LOGGING settings keep only their warnings."""
    alias = mail_setup["setup"].section.alias
    Invoice.objects.update(pdf="")  # make the command render the PDFs
    with SmtpServer() as server:
        _point_to(mail_setup["organisation"], server)
        out = _command("--section", alias, "--month", "2026-04")
        assert len(server.received) == 2
    captured = capfd.readouterr()
    assert "Step 1" not in out + captured.out + captured.err
    noisy = [r for r in caplog.records if r.name.split(".")[0] in ("weasyprint", "fontTools") and r.levelno < 30]
    assert noisy == []
