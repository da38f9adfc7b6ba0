"""Reminder letters by e-mail through the outbox, received by a real SMTP server (aiosmtpd): the
letter PDF attached byte for byte, debtors without an address listed to post."""
import io
from datetime import date

import pytest
from pypdf import PdfReader

from mailing.models import OutgoingMessage
from reminders.models import ReminderLetter
from reminders.services.runs import run_create
from residents.models import Resident
from tests.billing.payment_helpers import issued_invoice, resident_in
from tests.factories import SectionFactory

pytestmark = pytest.mark.django_db


def test_letters_emailed_to_debtors_with_an_address_the_rest_to_post(validate_through_smtp):
    section = SectionFactory(alias="TIL-HP")
    est = section.establishment
    est.name, est.sender_name, est.sender_email = "EHPAD Les Tilleuls", "Facturation", "facturation@tilleuls.example"
    est.save()
    org = est.organisation
    org.mail_delay_seconds, org.mail_pause_every, org.mail_pause_seconds = 0, 0, 0
    martin = resident_in(section, last_name="MARTIN")
    Resident.objects.filter(pk=martin.pk).update(email="jeanne.martin@example.org")
    leroy = resident_in(section, last_name="LEROY")
    Resident.objects.filter(pk=leroy.pk).update(email="")
    a = issued_invoice(section, martin, "100.00", date(2026, 1, 5))
    issued_invoice(section, leroy, "60.00", date(2026, 1, 5))
    run = run_create(section=section, print_date=date(2026, 2, 5))
    server = validate_through_smtp(run, org)
    run.refresh_from_db()
    assert run.status == "validated"
    martin_letter = ReminderLetter.objects.get(run=run, resident=martin)
    leroy_letter = ReminderLetter.objects.get(run=run, resident=leroy)
    assert run.result["emailed"] == [martin_letter.pk] and run.result["to_post"] == [leroy_letter.pk]
    assert martin_letter.emails == ["jeanne.martin@example.org"] and leroy_letter.emails == []
    [received] = server.received
    assert received.rcpt_tos == ["jeanne.martin@example.org"]
    mime = received.message
    assert mime["Subject"] == "Relance — factures impayées — EHPAD Les Tilleuls"
    assert "100,00" in mime.get_body(("plain",)).get_content()
    [attachment] = list(mime.iter_attachments())
    with martin_letter.pdf.open("rb") as handle:
        assert attachment.get_content() == handle.read()
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(attachment.get_content())).pages)
    assert a.number in text and "MARTIN" in text
    assert OutgoingMessage.objects.get().status == "sent"
