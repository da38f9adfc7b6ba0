"""Credit notes (billing-rules §6): full credit of invoices with negative or zero lines, per-line
limits after earlier credit notes, the full credit confirmed on its own page (never pre-selected),
French amounts in errors, typed values kept, no due date, e-mail and PDF that say *avoir*."""
import io
import re
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from pypdf import PdfReader

from billing.models import Invoice, InvoiceLine
from billing.services import mailing as mail_services
from billing.services import pdf as pdf_services
from billing.services.generation import period_generate
from billing.services.issuing import credit_left_by_line, credit_note_create, invoices_issue, period_issue
from billing.services.periods import period_create

D = Decimal
APRIL = (date(2026, 4, 1), date(2026, 4, 30))


def _manual_invoice(setup, lines, issue_date=date(2026, 5, 2)):
    stay = setup.stay(gir=6)
    invoice = Invoice.objects.create(
        section=setup.section, establishment=setup.establishment, kind="invoice", debtor_kind="resident",
        resident=stay.resident, date_from=APRIL[0], date_to=APRIL[1], total=sum(D(a) for _l, a in lines))
    for position, (label, amount) in enumerate(lines):
        InvoiceLine.objects.create(invoice=invoice, resident=stay.resident, label=label, date_from=APRIL[0],
                                   date_to=APRIL[1], quantity=D("1"), unit_price=D(amount), amount=D(amount),
                                   position=position)
    return invoices_issue(invoice_ids=[invoice.pk], issue_date=issue_date)[0]


SOCIAL_AID = [("Hébergement", "1950.00"), ("Déduction aide sociale", "-1225.00"), ("Linge offert", "0.00")]


def test_full_credit_of_an_invoice_with_negative_and_zero_lines(billing_setup):
    invoice = _manual_invoice(billing_setup, SOCIAL_AID)
    assert invoice.total == D("725.00")
    credit = credit_note_create(invoice=invoice, reason="erreur", issue_date=date(2026, 5, 3))
    assert credit.total == D("-725.00")
    amounts = sorted((ln.credited_line.label, ln.amount) for ln in credit.lines.all())
    assert amounts == [("Déduction aide sociale", D("1225.00")), ("Hébergement", D("-1950.00")),
                       ("Linge offert", D("0.00"))]
    assert credit.due_date is None  # a credit note is owed to the debtor: no due date
    invoice.refresh_from_db()
    assert invoice.status == "cancelled"
    assert set(credit_left_by_line(invoice).values()) == {D("0.00")}


def test_partial_credits_are_limited_per_line_to_what_is_left(billing_setup):
    invoice = _manual_invoice(billing_setup, SOCIAL_AID)
    heb, deduction, _zero = invoice.lines.order_by("position")
    first = credit_note_create(invoice=invoice, lines={heb.pk: D("500"), deduction.pk: D("200")})
    assert sorted(ln.amount for ln in first.lines.all()) == [D("-500.00"), D("200.00")]  # deduction: opposite sign
    assert first.total == D("-300.00")
    assert credit_left_by_line(invoice) == {heb.pk: D("1450.00"), deduction.pk: D("-1025.00"), _zero.pk: D("0.00")}
    with pytest.raises(ValidationError) as exc:
        credit_note_create(invoice=invoice, lines={heb.pk: D("1450.01")})
    assert re.search(r"« Hébergement » : 1\s450,01\s€ \(maximum 1\s450,00\s€\)", exc.value.messages[0])
    with pytest.raises(ValidationError, match="augmenterait la somme due"):
        credit_note_create(invoice=invoice, lines={deduction.pk: D("10")})  # would be an invoice, not a credit
    with pytest.raises(ValidationError, match="dépasserait le montant de la facture"):
        credit_note_create(invoice=invoice, lines={heb.pk: D("1000")})  # 1 300 € credited on a 725 € invoice
    assert Invoice.objects.filter(kind="credit_note").count() == 1
    rest = credit_note_create(invoice=invoice)  # the full credit takes what is left
    assert rest.total == D("-425.00")
    invoice.refresh_from_db()
    assert invoice.status == "cancelled"
    with pytest.raises(ValidationError, match="Seule une facture émise"):
        credit_note_create(invoice=invoice)


def test_credit_note_pdf_and_mail_say_avoir(billing_setup):
    invoice = _manual_invoice(billing_setup, [("Hébergement", "1950.00")])
    credit = credit_note_create(invoice=invoice, lines={invoice.lines.get().pk: D("100")}, reason="chambre")
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf_services.invoice_render_pdf(
        pdf_services.invoices_for_render().get(pk=credit.pk)))).pages)
    text = re.sub(r"\s+", " ", text)
    assert "AVOIR" in text and "payer au plus tard" not in text
    assert "facture" not in text.lower().replace(f"avoir sur la facture n° {invoice.number.lower()}", "")
    texts = mail_services.default_text(establishment=billing_setup.establishment, invoice=credit)
    subject = mail_services.render_for_invoice(texts["subject"], credit)
    body = mail_services.render_for_invoice(texts["body"], credit)
    assert subject.startswith(f"Avoir {credit.number}") and "facture" not in subject.lower()
    assert "l'avoir n°" in body and "100,00" in body and "-100" not in body and invoice.number in body
    assert mail_services.render_for_invoice("{document} {numero}", credit) == f"avoir {credit.number}"
    assert mail_services.render_for_invoice("{document}", invoice) == "facture"


@pytest.fixture
def clerk(client, demo_with_residents):
    client.login(username="tilleuls", password="demo")
    return client


def _demo_invoice():
    from structures.models import Section

    period = period_create(section=Section.objects.get(alias="TIL-HP"), start=date(2026, 11, 1))
    period_generate(period=period)
    return period_issue(period=period, issue_date=date(2026, 12, 1))[0]


def test_full_credit_is_not_preselected_and_asks_for_confirmation(clerk):
    invoice = _demo_invoice()
    url = reverse("billing:invoice-detail", kwargs={"alias": "TIL-HP", "pk": invoice.pk})
    page = clerk.get(url).content.decode()
    checkbox = re.search(r'<input[^>]*name="full"[^>]*>', page).group(0)
    assert "checked" not in checkbox
    line = invoice.lines.first()
    # A clerk types an amount and also ticks the full credit: refused, nothing issued, the value stays.
    page = clerk.post(url, {"reason": "erreur", "full": "on", f"credit_{line.pk}": "100"}).content.decode()
    assert "pas les deux" in page and 'value="100"' in page
    assert not Invoice.objects.filter(kind="credit_note").exists()
    # Full credit: a confirmation page with the total first, nothing issued yet.
    page = clerk.post(url, {"reason": "erreur de résident", "full": "on"}).content.decode()
    total = re.search(r'id="credit-total">([^<]+)<', page).group(1)
    assert total.replace("\u00a0", " ").replace("\u202f", " ") == \
        f"{invoice.total:,.2f} €".replace(",", " ").replace(".", ",")
    assert 'name="confirm"' in page and not Invoice.objects.filter(kind="credit_note").exists()
    response = clerk.post(url, {"reason": "erreur de résident", "full": "on", "confirm": "1"})
    credit = Invoice.objects.get(kind="credit_note")
    assert response.status_code == 302 and credit.total == -invoice.total
    invoice.refresh_from_db()
    assert invoice.status == "cancelled"
    page = clerk.get(reverse("billing:invoice-detail", kwargs={"alias": "TIL-HP", "pk": credit.pk})).content.decode()
    assert "échéance" not in page


def test_partial_credit_errors_are_french_and_keep_the_typed_values(clerk):
    invoice = _demo_invoice()
    url = reverse("billing:invoice-detail", kwargs={"alias": "TIL-HP", "pk": invoice.pk})
    first, second = invoice.lines.all()[:2]
    too_much = first.amount + D("5")
    typed = str(too_much).replace(".", ",")
    page = clerk.post(url, {"reason": "erreur", f"credit_{first.pk}": typed, f"credit_{second.pk}": "1,50"}
                      ).content.decode()
    assert re.search(r"maximum [\d\s\u00a0\u202f]+,\d\d\s€", page)
    assert f'value="{typed}"' in page and 'value="1,50"' in page
    assert not Invoice.objects.filter(kind="credit_note").exists()
    page = clerk.post(url, {"reason": "erreur"}).content.decode()
    assert "au moins une ligne" in page


def test_credit_note_view_refusals(client, demo_with_residents):
    invoice = _demo_invoice()
    url = reverse("billing:invoice-detail", kwargs={"alias": "TIL-HP", "pk": invoice.pk})
    client.login(username="direction", password="demo")
    assert client.post(url, {"reason": "x", "full": "on", "confirm": "1"}).status_code == 403
    client.logout()
    client.login(username="verger", password="demo")
    assert client.post(url, {"reason": "x", "full": "on", "confirm": "1"}).status_code == 404
    assert not Invoice.objects.filter(kind="credit_note").exists()


def test_credit_note_mail_page_offers_the_avoir_text(clerk):
    invoice = _demo_invoice()
    credit = credit_note_create(invoice=invoice, lines={invoice.lines.first().pk: D("1")}, reason="x",
                                issue_date=date(2026, 12, 1))
    response = clerk.get(reverse("billing:invoice-mail", kwargs={"alias": "TIL-HP", "pk": credit.pk}))
    form = response.context["form"]
    assert form.initial["subject"].startswith("Avoir {numero}")
    page = response.content.decode()
    assert "Envoyer l&#x27;avoir" in page or "Envoyer l'avoir" in page
    assert "Envoyer la facture" not in page
