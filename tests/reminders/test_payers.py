"""Payers (départements, caisses) reminded with their own texts, by e-mail through the outbox to a
real SMTP server (aiosmtpd), the statement (bordereau) named on the letter; a payer without an
address is flagged and listed to post; every letter is archived on the payer (« Envois » tab)."""
import io
from datetime import date
from pathlib import Path

import pytest
from django.urls import reverse
from pypdf import PdfReader

from billing.models import BillingPeriod, Statement, StatementLine
from payers.models import Payer
from reminders.models import ReminderLetter, ReminderText
from reminders.services.runs import run_create
from structures.models import SectionAccess
from tests.billing.payment_helpers import issued_invoice, resident_in
from tests.factories import SectionAccessFactory, SectionFactory, UserFactory

pytestmark = pytest.mark.django_db


def _pdf_text(content: bytes) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages)


@pytest.fixture
def site():
    section = SectionFactory(alias="TIL-HP")
    est = section.establishment
    est.name, est.sender_name, est.sender_email = "EHPAD Les Tilleuls", "Facturation", "facturation@tilleuls.example"
    est.save()
    org = est.organisation
    org.mail_delay_seconds, org.mail_pause_every, org.mail_pause_seconds = 0, 0, 0
    org.save()
    cd = Payer.objects.create(organisation=org, code="CD45", name="Conseil départemental du Loiret",
                              kind=Payer.Kind.DEPARTEMENT, email="aide.sociale@loiret.example")
    caisse = Payer.objects.create(organisation=org, code="MUT", name="Mutuelle Sans Adresse", kind=Payer.Kind.MUTUAL)
    martin = resident_in(section, last_name="MARTIN")
    a = issued_invoice(section, martin, "900.00", date(2026, 1, 5), payer=cd)
    b = issued_invoice(section, martin, "120.00", date(2026, 1, 5), payer=caisse)
    period = BillingPeriod.objects.create(section=section, start=date(2026, 1, 1), end=date(2026, 1, 31),
                                          accounting_date=date(2026, 1, 31), label="Janvier 2026")
    statement = Statement.objects.create(section=section, establishment=est, period=period, payer=cd,
                                         number="BRD-2026-0007", statement_date=date(2026, 1, 6), total=a.total)
    StatementLine.objects.create(statement=statement, invoice=a, resident=martin, resident_name="MARTIN",
                                 amount=a.total)
    return {"section": section, "org": org, "cd": cd, "caisse": caisse, "a": a, "b": b}


def test_payers_reminded_by_email_with_their_texts_the_rest_to_post(site, validate_through_smtp):
    section = site["section"]
    run = run_create(section=section, print_date=date(2026, 2, 5))
    server = validate_through_smtp(run, site["org"])
    run.refresh_from_db()
    cd_letter = ReminderLetter.objects.get(run=run, payer=site["cd"])
    caisse_letter = ReminderLetter.objects.get(run=run, payer=site["caisse"])
    assert run.result["emailed"] == [cd_letter.pk] and run.result["to_post"] == [caisse_letter.pk]
    [received] = server.received
    assert received.rcpt_tos == ["aide.sociale@loiret.example"]
    payer_title = ReminderText.objects.get(establishment=section.establishment, audience="payer", level=1).title
    assert received.message["Subject"] == f"{payer_title} — EHPAD Les Tilleuls"
    [attachment] = list(received.message.iter_attachments())
    text = _pdf_text(attachment.get_content())
    # The payer's own text (not the families'), its name as the person, the statement named.
    assert "factures et bordereaux ci-dessous adressés à" in text and "Conseil départemental du Loiret" in text
    assert "BRD-2026-0007" in text and site["a"].number in text and "900,00" in text
    assert "concernant" not in text
    # The families' texts are untouched.
    family = ReminderText.objects.get(establishment=section.establishment, audience="family", level=1)
    assert "concernant {personne}" in family.header


def test_payer_file_envois_tab_and_no_email_flag(site, client, validate_through_smtp):
    section = site["section"]
    clerk = UserFactory(username="clerk")
    SectionAccessFactory(user=clerk, section=section, role=SectionAccess.Role.MANAGER)
    run = run_create(section=section, print_date=date(2026, 2, 5))
    client.force_login(clerk)
    proposal = client.get(reverse("reminders:run", kwargs={"alias": "TIL-HP", "pk": run.pk})).content.decode()
    assert proposal.count("data-payer-no-email") == 1  # the mutual, not the département
    validate_through_smtp(run, site["org"])
    page = client.get(reverse("reminders:run", kwargs={"alias": "TIL-HP", "pk": run.pk})).content.decode()
    assert "payeur sans adresse e-mail" in page and 'id="to-post"' in page
    url = reverse("payers:detail", kwargs={"alias": "TIL-HP", "pk": site["caisse"].pk}) + "?tab=mails"
    tab = client.get(url).content.decode()
    letter = ReminderLetter.objects.get(payer=site["caisse"])
    assert "Envois" in tab and "1re relance" in tab and site["b"].number in tab and "à poster" in tab
    assert "aucune adresse e-mail" in tab
    assert reverse("reminders:letter-pdf", kwargs={"alias": "TIL-HP", "pk": letter.pk}) in tab
    cd_tab = client.get(reverse("payers:detail", kwargs={"alias": "TIL-HP", "pk": site["cd"].pk})
                        + "?tab=mails").content.decode()
    assert "aide.sociale@loiret.example" in cd_tab and site["b"].number not in cd_tab
    # Letters of a section the user cannot read are not shown.
    other = SectionFactory(alias="TIL-UP", establishment=section.establishment)
    type(run).objects.filter(pk=run.pk).update(section=other)
    assert site["b"].number not in client.get(url).content.decode()


def test_payers_app_imports_nothing_of_reminders():
    root = Path(__file__).resolve().parents[2] / "payers"
    for path in root.rglob("*"):
        if path.suffix in (".py", ".html"):
            assert "reminders" not in path.read_text(encoding="utf-8"), path
