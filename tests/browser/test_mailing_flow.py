"""End to end in Debian's chromium: in the demo, a billing clerk sends a period's invoices by e-mail
from the journal, follows the progress, sees each invoice's envelope in the journal, and the mails
(with their PDFs) arrive in the local SMTP sink (tasks run eagerly inside the live server)."""
import socket
from datetime import date

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from billing.models import BillingPeriod, Invoice
from billing.services.generation import period_generate
from billing.services.issuing import period_issue
from mailing.sink import sink_controller, sink_messages
from tests.browser.conftest import screenshot_path


@pytest.fixture
def sink(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    directory = tmp_path / "mailsink"
    controller = sink_controller(directory=directory, port=port)
    controller.start()
    yield port, directory
    controller.stop()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_clerk_sends_a_period_by_email_and_sees_the_envelopes(live_server, page, eager_celery, sink):
    from demo.services.seed import demo_seed

    demo = demo_seed(residents=14)
    port, directory = sink
    org = demo["organisation"]
    org.smtp_port, org.mail_delay_seconds, org.mail_pause_every, org.mail_pause_seconds = port, 0, 0, 0
    org.save()
    section = demo["sections"]["TIL-HP"]
    period = BillingPeriod.objects.create(section=section, start=date(2026, 11, 1), end=date(2026, 11, 30),
                                          accounting_date=date(2026, 11, 30), label="novembre 2026")
    period_generate(period=period)
    issued = period_issue(period=period, issue_date=date(2026, 12, 1))
    assert issued

    base = live_server.url
    page.goto(f"{base}/connexion/")
    page.fill("#id_username", "tilleuls")
    page.fill("#id_password", "demo")
    page.get_by_role("button", name="Se connecter").click()
    page.goto(base + reverse("billing:journal", kwargs={"alias": "TIL-HP", "period_pk": period.pk}))
    expect(page.locator("#journal td.sent span")).to_have_count(0)

    # The campaign screen: every issued invoice with its addresses, all unsent ones ticked.
    page.get_by_role("link", name="Envoyer par e-mail").click()
    expect(page.locator("h1")).to_contain_text("Envoi des factures par e-mail")
    rows = page.locator("#mail-invoices tbody tr[data-invoice]")
    expect(rows).to_have_count(len(issued))
    page.locator("#select-none").click()
    expect(page.locator("input[name=invoices]:checked")).to_have_count(0)
    page.locator("#select-all").click()
    expect(page.locator("input[name=invoices]:checked")).to_have_count(len(issued))
    page.fill("#id_subject", "Votre facture {numero} — {periode}")
    page.locator("button", has_text="Actualiser l'aperçu").click()
    expect(page.locator("#preview-subject")).to_contain_text("— novembre 2026")
    page.screenshot(path=str(screenshot_path("mail-campaign.png")), full_page=True)

    # Send: the job's progress and the counts (sent / failed / remaining) on the report page.
    page.locator("#mail-send").click()
    expect(page.locator(".messages")).to_contain_text(f"{len(issued)} message(s) mis en file d'envoi")
    expect(page.locator("#campaign-progress .count-sent")).to_contain_text(str(len(issued)), timeout=30000)
    expect(page.locator("#campaign-progress .count-failed")).to_contain_text("0")
    expect(page.locator("#campaign-progress .count-remaining")).to_contain_text("0")
    expect(page.locator("#campaign-done")).to_be_visible()
    expect(page.locator(".job-progress")).to_have_count(0)  # one progress block: the campaign's counts
    expect(page.locator("#campaign-messages tbody tr.status-sent")).to_have_count(len(issued))
    page.screenshot(path=str(screenshot_path("mail-report.png")), full_page=True)

    # The journal shows the envelope and the sending time of each invoice.
    page.get_by_role("link", name="Journal des factures").click()
    expect(page.locator("#journal td.sent span")).to_have_count(len(issued))
    assert Invoice.objects.filter(pk__in=[i.pk for i in issued], last_sent_at__isnull=True).count() == 0

    # The mails are in the sink, one per invoice, each with its PDF.
    received = sink_messages(directory)
    assert len(received) == len(issued)
    numbers = sorted(i.number for i in issued)
    assert sorted(m["Subject"].split(" ")[2] for m in received) == numbers
    for message in received:
        pdfs = [part for part in message.walk() if part.get_content_type() == "application/pdf"]
        assert len(pdfs) == 1 and pdfs[0].get_payload(decode=True).startswith(b"%PDF")
