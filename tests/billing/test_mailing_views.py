"""The e-mail pages in the demo: campaign screen from the journal, one invoice, the report (print,
XLSX, progress), manual decisions, the SMTP test and the mail settings — with section scoping
(another section: 404; a *lecture* user: 403 on any change)."""
import io
from datetime import date

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from billing.models import BillingPeriod, Invoice
from billing.services.generation import period_generate
from billing.services.issuing import period_issue
from mailing.models import MailCampaign, OutgoingMessage
from residents.models import Relative, Resident
from tests.mailing.servers import Handler, SmtpServer, free_port


@pytest.fixture
def site(demo_with_residents):
    demo = demo_with_residents
    section = demo["sections"]["TIL-HP"]
    org = demo["organisation"]
    org.mail_delay_seconds, org.mail_pause_every, org.mail_pause_seconds = 0, 0, 0
    org.save()
    period = BillingPeriod.objects.create(section=section, start=date(2026, 11, 1), end=date(2026, 11, 30),
                                          accounting_date=date(2026, 11, 30), label="novembre 2026")
    period_generate(period=period)
    issued = period_issue(period=period, issue_date=date(2026, 12, 1))
    assert len(issued) >= 3
    invoices = list(Invoice.objects.filter(period=period).order_by("number"))
    # The last invoice's resident has no address at all.
    nobody = invoices[-1].resident
    Resident.objects.filter(pk=nobody.pk).update(email="")
    Relative.objects.filter(resident=nobody).update(email="")
    return {"demo": demo, "section": section, "period": period, "invoices": invoices, "org": org,
            "users": demo["users"], "nobody": invoices[-1]}


def _campaign_url(site, alias=None):
    return reverse("billing:mail-campaign", kwargs={"alias": alias or "TIL-HP", "period_pk": site["period"].pk})


def _point_to(org, server):
    org.smtp_port, org.smtp_security = server.port, "none"
    org.save()


def test_journal_has_the_button_for_clerks_only(client, site):
    url = reverse("billing:journal", kwargs={"alias": "TIL-HP", "period_pk": site["period"].pk})
    client.force_login(site["users"]["tilleuls"])
    assert _campaign_url(site) in client.get(url).content.decode()
    client.force_login(site["users"]["direction"])
    assert _campaign_url(site) not in client.get(url).content.decode()


def test_campaign_screen_lists_invoices_addresses_and_those_without(client, site):
    client.force_login(site["users"]["tilleuls"])
    html = client.get(_campaign_url(site)).content.decode()
    first = site["invoices"][0]
    assert f'name="invoices" value="{first.pk}"' in html
    assert "proche." in html and "@familles.example" in html  # the relative receiving the invoices
    assert 'id="mail-no-address"' in html and site["nobody"].number in html and "aucune adresse e-mail" in html
    assert f'name="invoices" value="{site["nobody"].pk}"' not in html
    assert f"Facture {first.number} — novembre 2026" in html  # preview with a real invoice


def test_campaign_screen_scoping(client, site):
    client.force_login(site["users"]["verger"])
    assert client.get(_campaign_url(site)).status_code == 404
    client.force_login(site["users"]["tilleuls"])
    assert client.get(_campaign_url(site, alias="TIL-HT")).status_code == 404  # period of another section
    client.force_login(site["users"]["direction"])
    assert client.get(_campaign_url(site)).status_code == 403
    response = client.post(_campaign_url(site), {"invoices": [site["invoices"][0].pk], "subject": "s", "body": "b"})
    assert response.status_code == 403
    assert not OutgoingMessage.objects.exists()


def test_send_from_the_browser_then_report_export_and_envelope(client, site, eager_celery,
                                                                django_capture_on_commit_callbacks):
    first, second = site["invoices"][0], site["invoices"][1]
    client.force_login(site["users"]["tilleuls"])
    with SmtpServer() as server:
        _point_to(site["org"], server)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(_campaign_url(site), {
                "invoices": [first.pk, second.pk], "subject": "Facture {numero}", "body": "Bonjour &personne",
                "read_receipt": "on",
                "general_attachment": SimpleUploadedFile("gazette.pdf", b"%PDF gazette", "application/pdf"),
                f"attachment_{second.pk}": SimpleUploadedFile("note.txt", b"note", "text/plain"),
            })
    assert response.status_code == 302
    campaign = MailCampaign.objects.get(kind="period")
    assert response["Location"] == reverse("mailing:campaign-detail", kwargs={"alias": "TIL-HP", "pk": campaign.pk})
    assert sorted(r.message["Subject"] for r in server.received) == sorted([f"Facture {first.number}",
                                                                           f"Facture {second.number}"])
    page = client.get(response["Location"]).content.decode()
    assert 'data-sent="2"' in page and "Envoi terminé" in page and first.number in page
    progress = client.get(reverse("mailing:campaign-progress", kwargs={"alias": "TIL-HP", "pk": campaign.pk}))
    assert 'data-remaining="0"' in progress.content.decode()
    xlsx = client.get(reverse("mailing:campaign-export", kwargs={"alias": "TIL-HP", "pk": campaign.pk}))
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    cells = [str(c.value) for row in sheet.iter_rows() for c in row if c.value is not None]
    assert any(first.number in c for c in cells) and "Envoyé" in cells
    journal = client.get(reverse("billing:journal", kwargs={"alias": "TIL-HP", "period_pk": site["period"].pk}))
    assert journal.content.decode().count("✉") == 2
    # The campaign is invisible from another section.
    client.force_login(site["users"]["verger"])
    assert client.get(reverse("mailing:campaign-detail", kwargs={"alias": "VER-HP", "pk": campaign.pk})
                      ).status_code == 404


def test_attachment_limits(client, site, settings):
    settings.MAIL_MAX_ATTACHMENT_BYTES = 1000
    settings.MAIL_WARN_ATTACHMENT_BYTES = 100
    client.force_login(site["users"]["tilleuls"])
    data = {"invoices": [site["invoices"][0].pk], "subject": "s", "body": "b"}
    response = client.post(_campaign_url(site), {**data, "general_attachment": SimpleUploadedFile(
        "gros.pdf", b"x" * 2000, "application/pdf")})
    assert response.status_code == 200 and "est refusée" in response.content.decode()
    assert not MailCampaign.objects.exists()
    response = client.post(_campaign_url(site), {**data, "general_attachment": SimpleUploadedFile(
        "moyen.pdf", b"x" * 500, "application/pdf")}, follow=True)
    assert "au-delà de 1 Mo" in response.content.decode()
    assert MailCampaign.objects.count() == 1


def test_unknown_placeholder_is_refused(client, site):
    client.force_login(site["users"]["tilleuls"])
    response = client.post(_campaign_url(site), {"invoices": [site["invoices"][0].pk], "subject": "Facture {numro}",
                                                 "body": "b"})
    assert response.status_code == 200 and "Mot-clé inconnu : {numro}" in response.content.decode()


def test_preview_fragment(client, site):
    client.force_login(site["users"]["tilleuls"])
    invoice = site["invoices"][0]
    html = client.get(reverse("billing:mail-preview", kwargs={"alias": "TIL-HP"}),
                      {"subject": "N° {numero}", "body": "Pour &personne, &periode", "invoice": invoice.pk}).content.decode()
    assert f"N° {invoice.number}" in html and f"Pour {invoice.resident.full_name}, novembre 2026" in html


def test_one_invoice_to_a_typed_address(client, site, eager_celery, django_capture_on_commit_callbacks):
    invoice = site["invoices"][0]
    client.force_login(site["users"]["tilleuls"])
    detail = client.get(reverse("billing:invoice-detail", kwargs={"alias": "TIL-HP", "pk": invoice.pk})).content.decode()
    url = reverse("billing:invoice-mail", kwargs={"alias": "TIL-HP", "pk": invoice.pk})
    assert url in detail and "Envoyer cette facture" in detail
    page = client.get(url).content.decode()
    assert "@familles.example" in page
    with SmtpServer() as server:
        _point_to(site["org"], server)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(url, {"other": "comptable@example.org", "subject": "Facture {numero}",
                                         "body": "Bonjour"})
    assert response.status_code == 302
    [received] = server.received
    assert received.rcpt_tos == ["comptable@example.org"]
    invoice.refresh_from_db()
    assert invoice.last_sent_at is not None
    client.force_login(site["users"]["direction"])
    assert client.post(url, {"other": "x@example.org", "subject": "s", "body": "b"}).status_code == 403


def test_message_decisions_and_scoping(client, site, eager_celery, django_capture_on_commit_callbacks):
    invoice = site["invoices"][0]
    handler = Handler(mail_replies=["550 5.7.60 Client does not have permissions to send as this sender"])
    client.force_login(site["users"]["tilleuls"])
    with SmtpServer(handler) as server:
        _point_to(site["org"], server)
        with django_capture_on_commit_callbacks(execute=True):
            client.post(reverse("billing:invoice-mail", kwargs={"alias": "TIL-HP", "pk": invoice.pk}),
                        {"other": "a@example.org", "subject": "s", "body": "b"})
        message = OutgoingMessage.objects.get()
        assert message.status == "failed" and "n'a pas le droit d'envoyer" in message.explanation
        url = reverse("mailing:message-detail", kwargs={"alias": "TIL-HP", "pk": message.pk})
        page = client.get(url).content.decode()
        assert "n&#x27;a pas le droit d&#x27;envoyer" in page and 'id="message-requeue"' in page
        client.force_login(site["users"]["direction"])
        assert client.post(url, {"action": "requeue"}).status_code == 403
        client.force_login(site["users"]["verger"])
        assert client.get(reverse("mailing:message-detail", kwargs={"alias": "VER-HP", "pk": message.pk})
                          ).status_code == 404
        client.force_login(site["users"]["tilleuls"])
        with django_capture_on_commit_callbacks(execute=True):
            client.post(url, {"action": "requeue"})
    message.refresh_from_db()
    assert message.status == "sent" and len(server.received) == 1


def test_smtp_test_page_for_managers(client, site):
    url = reverse("mailing:smtp-test", kwargs={"alias": "TIL-HP"})
    client.force_login(site["users"]["tilleuls"])  # facturation, not responsable
    assert client.get(url).status_code == 403
    client.force_login(site["users"]["admin"])
    page = client.get(url).content.decode()
    assert "smtp.office365.com" in page and "587" in page and "STARTTLS" in page
    with SmtpServer() as server:
        _point_to(site["org"], server)
        response = client.post(url, {"to": "moi@example.org"})
    html = response.content.decode()
    assert "Réussi" in html and "Le serveur a accepté le message de test pour moi@example.org" in html
    [received] = server.received
    assert received.rcpt_tos == ["moi@example.org"]
    assert OutgoingMessage.objects.get().status == "sent"
    site["org"].smtp_port = free_port()
    site["org"].save()
    html = client.post(url, {"to": "moi@example.org"}).content.decode()
    assert "Échec" in html and "Connexion refusée par 127.0.0.1" in html


def test_mail_settings_for_managers(client, site):
    url = reverse("billing:mail-settings", kwargs={"alias": "TIL-HP"})
    client.force_login(site["users"]["tilleuls"])
    assert client.get(url).status_code == 403
    client.force_login(site["users"]["admin"])
    page = client.get(url).content.decode()
    assert "&amp;personne" in page and "MAILLY Josiane" in page  # the registry with its samples
    data = {"sender_name": "Facturation", "sender_email": "factures@tilleuls.example",
            "mail_subject": "Facture {numro}", "mail_body": "Bonjour"}
    assert "Mot-clé inconnu" in client.post(url, data).content.decode()
    data["mail_subject"] = "Votre facture {numero} ({periode})"
    assert client.post(url, data).status_code == 302
    establishment = site["section"].establishment
    establishment.refresh_from_db()
    assert establishment.mail_subject == "Votre facture {numero} ({periode})"
    page = client.get(url).content.decode()
    assert "Votre facture TIL-2022-000123 (septembre 2022)" in page
    assert f"Votre facture {site['invoices'][-1].number} (novembre 2026)" in page or "novembre 2026" in page


def test_campaign_page_follows_its_job_with_one_progress_block(client, site):
    """One progress block (the campaign's counts), and the poll that sees the end fires
    « job-finished » so that the message rows and buttons are reloaded."""
    import json
    import re

    from core.models import Job
    from core.services.jobs import job_create
    from mailing.services.campaigns import campaign_create
    from mailing.services.outbox import message_queue

    campaign = campaign_create(organisation=site["org"], label="Essai", section=site["section"])
    message_queue(organisation=site["org"], sender_email="f@x.example", recipients=["a@example.org"],
                  subject="s", body="b", campaign=campaign, section=site["section"])
    job = job_create(kind="mailing.campaign_send", label="Envoi", section=site["section"],
                     params={"campaign_id": campaign.pk})
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING)
    campaign.job = job
    campaign.save()
    client.force_login(site["users"]["tilleuls"])
    detail = reverse("mailing:campaign-detail", kwargs={"alias": "TIL-HP", "pk": campaign.pk})
    progress = reverse("mailing:campaign-progress", kwargs={"alias": "TIL-HP", "pk": campaign.pk})
    html = client.get(detail).content.decode()
    assert html.count('class="job-progress') == 0 and html.count('id="campaign-progress"') == 1
    region = re.search(r'<div id="campaign-live"([^>]*)>', html)
    assert region and 'hx-trigger="job-finished from:body"' in region.group(1)
    assert 'id="campaign-messages"' in html[region.start():] and "Annuler les messages restants" in html
    assert "HX-Trigger" not in client.get(progress, HTTP_HX_REQUEST="true")  # running
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED)
    campaign.messages.update(status="sent")
    response = client.get(progress, HTTP_HX_REQUEST="true")
    assert json.loads(response["HX-Trigger"]) == {"job-finished": {"campaign": campaign.pk}}
    assert "Annuler les messages restants" not in client.get(detail).content.decode()
