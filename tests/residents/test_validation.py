"""Bad input is refused with a French message naming the field, and nothing is saved."""
from datetime import date, timedelta
from html import unescape

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from residents.models import Absence, GirAssessment, Relative, Resident, Stay
from residents.services import residents as services
from tests.factories import RelativeFactory, StayFactory


@pytest.fixture
def tilleuls(client, demo):
    client.force_login(demo["users"]["tilleuls"])
    return client


def counts():
    return tuple(m.objects.count() for m in (Resident, Stay, Relative, GirAssessment, Absence))


def shows(response, label, message):
    """The page shows « Label : message » (rendered by _form_fields.html)."""
    return f"{label} : {message}" in unescape(response.content.decode())


def url(name, objects=None, **kwargs):
    if objects is not None:
        kwargs.setdefault("pk", objects["resident"].pk)
    return reverse(f"residents:{name}", kwargs={"alias": "TIL-HP", **kwargs})


CREATE = {
    "civility": "MME", "last_name": "Lambert", "first_name": "Odette", "birth_date": "1938-02-03",
    "nir": "", "email": "", "external_ref": "", "payment_mode": "cheque",
    "stay-entry_date": "2026-03-01", "stay-room": "12", "stay-gir": "",
}


# --- Creation form -------------------------------------------------------------------------------

@pytest.mark.django_db
class TestCreate:
    def post(self, client, **changes):
        return client.post(url("create"), {**CREATE, **changes})

    def test_birth_date_in_the_future(self, tilleuls):
        before = counts()
        future = timezone.localdate() + timedelta(days=3)
        response = self.post(tilleuls, birth_date=future.isoformat())
        assert response.status_code == 200
        message = f"La date {future:%d/%m/%Y} est dans le futur."
        assert response.context["form"].errors["birth_date"] == [message]
        assert shows(response, "Date de naissance", message)
        assert counts() == before

    def test_invalid_nir(self, tilleuls):
        before = counts()
        response = self.post(tilleuls, nir="2 38 02 69 123 456 00")
        assert "NIR invalide" in response.context["form"].errors["nir"][0]
        assert shows(response, "NIR (n° de sécurité sociale)", "NIR invalide : « 2 38 02 69 123 456 00 »")
        assert counts() == before

    def test_invalid_email_of_resident_and_relative(self, tilleuls):
        before = counts()
        response = self.post(tilleuls, email="jeanne@", **{"relative-last_name": "Lambert",
                                                           "relative-email": "pas-une-adresse"})
        assert response.context["form"].errors["email"] == ["Saisissez une adresse de courriel valide."]
        assert response.context["relative_form"].errors["email"] == ["Saisissez une adresse de courriel valide."]
        assert shows(response, "E-mail", "Saisissez une adresse de courriel valide.")
        assert counts() == before

    def test_missing_names_and_entry_date(self, tilleuls):
        before = counts()
        response = self.post(tilleuls, last_name="", **{"stay-entry_date": "", "relative-first_name": "Paul"})
        assert response.context["form"].errors["last_name"] == ["Ce champ est obligatoire."]
        assert response.context["stay_form"].errors["entry_date"] == ["Ce champ est obligatoire."]
        # A relative partly filled in needs a name.
        assert response.context["relative_form"].errors["last_name"] == ["Ce champ est obligatoire."]
        assert shows(response, "Date d'entrée", "Ce champ est obligatoire.")
        assert counts() == before

    def test_duplicate_external_ref_in_the_association(self, tilleuls, verger_objects):
        before = counts()
        response = self.post(tilleuls, external_ref="VER-001")
        assert response.context["form"].errors["external_ref"] == [
            "La référence externe « VER-001 » est déjà celle de VERGERIN Jeanne."]
        assert counts() == before

    def test_a_service_error_after_the_resident_is_written_rolls_everything_back(self, tilleuls, monkeypatch):
        """The resident row is inserted before the relative is checked: the whole creation is undone."""
        def refuse(*, relative):
            raise ValidationError({"receives_invoices": "Refusé pour le test."})

        monkeypatch.setattr(services, "relative_validate", refuse)
        before = counts()
        response = self.post(tilleuls, **{"relative-last_name": "Lambert", "relative-receives_invoices": "on"})
        assert response.status_code == 200
        assert response.context["relative_form"].errors["receives_invoices"] == ["Refusé pour le test."]
        assert counts() == before


# --- Stays ---------------------------------------------------------------------------------------

@pytest.mark.django_db
class TestStays:
    def test_end_date_before_entry(self, tilleuls, tilleuls_objects):
        stay = tilleuls_objects["stay"]
        before = counts()
        response = tilleuls.post(url("stay-edit", tilleuls_objects, stay_pk=stay.pk),
                                 {"entry_date": "2026-01-05", "end_date": "2026-01-02", "end_reason": "departure"})
        message = "La date de fin (02/01/2026) est antérieure à la date d'entrée (05/01/2026)."
        assert response.context["form"].errors["end_date"] == [message]
        assert shows(response, "Date de fin", message)
        stay.refresh_from_db()
        assert stay.end_date is None and counts() == before

    def test_end_date_without_reason(self, tilleuls, tilleuls_objects):
        stay = tilleuls_objects["stay"]
        response = tilleuls.post(url("stay-edit", tilleuls_objects, stay_pk=stay.pk),
                                 {"entry_date": "2026-01-05", "end_date": "2026-06-30", "end_reason": ""})
        assert response.context["form"].errors["end_reason"] == [
            "Indiquez le motif de fin du séjour (départ, transfert ou décès)."]
        stay.refresh_from_db()
        assert stay.end_date is None

    def test_closing_before_an_absence_is_refused(self, tilleuls, tilleuls_objects):
        stay = tilleuls_objects["stay"]  # absence 02/03 → 05/03/2026
        response = tilleuls.post(url("stay-edit", tilleuls_objects, stay_pk=stay.pk),
                                 {"entry_date": "2026-01-05", "end_date": "2026-03-03", "end_reason": "departure"})
        assert response.context["form"].errors["end_date"] == ["Des absences saisies sortiraient des dates du séjour."]
        stay.refresh_from_db()
        assert stay.end_date is None

    def test_overlapping_stays_in_one_section(self, tilleuls, tilleuls_objects):
        before = counts()
        response = tilleuls.post(url("stay-add", tilleuls_objects),
                                 {"entry_date": "2025-12-01", "end_date": "2026-01-10", "end_reason": "departure"})
        message = "Ce séjour chevauche le séjour du 05/01/2026 au … dans la section TIL-HP."
        assert response.context["form"].errors["entry_date"] == [message]
        assert shows(response, "Date d'entrée", message)
        assert counts() == before

    def test_same_dates_in_another_section_are_not_an_overlap_but_transfer_checks_dates(
            self, tilleuls, demo, tilleuls_objects):
        stay = tilleuls_objects["stay"]
        before = counts()
        response = tilleuls.post(url("transfer", tilleuls_objects, stay_pk=stay.pk),
                                 {"target_section": demo["sections"]["TIL-HT"].pk, "transfer_date": "2026-01-05"})
        message = ("La date de transfert (05/01/2026) doit être postérieure à l'entrée dans la section "
                   "(05/01/2026).")
        assert response.context["form"].errors["transfer_date"] == [message]
        assert shows(response, "Date du transfert", message)
        assert counts() == before

    def test_transfer_with_absences_after_the_date(self, tilleuls, demo, tilleuls_objects):
        stay = tilleuls_objects["stay"]
        response = tilleuls.post(url("transfer", tilleuls_objects, stay_pk=stay.pk),
                                 {"target_section": demo["sections"]["TIL-HT"].pk, "transfer_date": "2026-03-04"})
        assert "Des absences sont saisies à partir du 04/03/2026" in response.context["form"].errors["transfer_date"][0]
        stay.refresh_from_db()
        assert stay.end_date is None

    @pytest.mark.parametrize("target", ["TIL-HP", "VER-HP", "VER-AJ"])
    def test_transfer_target_must_be_another_section_where_the_user_bills(self, tilleuls, demo, tilleuls_objects,
                                                                          target):
        before = counts()
        stay = tilleuls_objects["stay"]
        response = tilleuls.post(url("transfer", tilleuls_objects, stay_pk=stay.pk),
                                 {"target_section": demo["sections"][target].pk, "transfer_date": "2026-06-01"})
        assert response.context["form"].errors["target_section"] == [
            "Sélectionnez un choix valide. Ce choix ne fait pas partie de ceux disponibles."]
        assert counts() == before

    def test_transfer_into_a_section_where_the_resident_already_stays(self, tilleuls, demo, tilleuls_objects):
        StayFactory(resident=tilleuls_objects["resident"], section=demo["sections"]["TIL-HT"],
                    entry_date=date(2026, 5, 1))
        stay = tilleuls_objects["stay"]
        before = counts()
        response = tilleuls.post(url("transfer", tilleuls_objects, stay_pk=stay.pk),
                                 {"target_section": demo["sections"]["TIL-HT"].pk, "transfer_date": "2026-06-01"})
        assert response.context["form"].errors["transfer_date"] == [
            "Ce séjour chevauche le séjour du 01/05/2026 au … dans la section TIL-HT."]
        stay.refresh_from_db()
        assert stay.end_date is None and counts() == before

    def test_gir_out_of_range(self, tilleuls, tilleuls_objects):
        before = counts()
        response = tilleuls.post(url("gir-add", tilleuls_objects), {"gir": "7", "valid_from": "2026-02-01"})
        assert "gir" in response.context["form"].errors
        assert counts() == before


# --- Relatives -----------------------------------------------------------------------------------

@pytest.mark.django_db
class TestRelatives:
    def test_a_second_invoice_recipient_on_add(self, tilleuls, tilleuls_objects):
        before = counts()
        first = tilleuls_objects["relative"]
        response = tilleuls.post(url("relative-add", tilleuls_objects),
                                 {"last_name": "Second", "receives_invoices": "on"})
        message = f"{first} est déjà destinataire des factures : un seul proche peut l'être."
        assert response.context["form"].errors["receives_invoices"] == [message]
        assert shows(response, "Destinataire des factures", message)
        assert counts() == before

    def test_a_second_invoice_recipient_on_edit(self, tilleuls, tilleuls_objects):
        other = RelativeFactory(resident=tilleuls_objects["resident"], last_name="Autre")
        response = tilleuls.post(url("relative-edit", tilleuls_objects, relative_pk=other.pk),
                                 {"last_name": "Autre", "receives_invoices": "on"})
        assert "est déjà destinataire des factures" in response.context["form"].errors["receives_invoices"][0]
        other.refresh_from_db()
        assert other.receives_invoices is False

    def test_a_second_paying_relative_is_refused_in_french(self, tilleuls, tilleuls_objects):
        from django.db import IntegrityError, transaction

        first = RelativeFactory(resident=tilleuls_objects["resident"], last_name="Payeuse", is_payer=True)
        before = counts()
        response = tilleuls.post(url("relative-add", tilleuls_objects), {"last_name": "Second", "is_payer": "on"})
        message = f"{first} règle déjà la part du résident : un seul proche peut être payeur."
        assert response.context["form"].errors["is_payer"] == [message]
        assert counts() == before
        with pytest.raises(IntegrityError), transaction.atomic():  # the database refuses it too
            RelativeFactory(resident=tilleuls_objects["resident"], last_name="Tiers", is_payer=True)

    def test_invalid_email(self, tilleuls, tilleuls_objects):
        before = counts()
        response = tilleuls.post(url("relative-add", tilleuls_objects), {"last_name": "X", "email": "x@@y"})
        assert shows(response, "E-mail", "Saisissez une adresse de courriel valide.")
        assert counts() == before


# --- Resident edit -------------------------------------------------------------------------------

@pytest.mark.django_db
def test_edit_with_future_birth_date_and_bad_nir(tilleuls, tilleuls_objects):
    resident = tilleuls_objects["resident"]
    future = timezone.localdate() + timedelta(days=1)
    response = tilleuls.post(url("edit", tilleuls_objects), {
        "civility": "MME", "last_name": "Changée", "first_name": "Jeanne", "birth_date": future.isoformat(),
        "nir": "123"})
    errors = response.context["form"].errors
    assert errors["birth_date"] == [f"La date {future:%d/%m/%Y} est dans le futur."]
    assert errors["nir"] == ["NIR invalide : « 123 » (15 caractères avec la clé, clé vérifiée)."]
    # The page header still shows the saved name, and nothing was saved.
    assert response.context["resident"].last_name == "Tilleulin"
    resident.refresh_from_db()
    assert resident.last_name == "Tilleulin"


# --- Absences ------------------------------------------------------------------------------------

@pytest.mark.django_db
class TestAbsences:
    def data(self, objects, **changes):
        return {"stay": objects["stay"].pk, "reason": objects["absence"].reason_id, "first_day": "2026-04-01",
                "last_day": "2026-04-03", "comment": "", **changes}

    def test_outside_the_stay(self, tilleuls, tilleuls_objects):
        before = counts()
        response = tilleuls.post(url("absence-add", tilleuls_objects),
                                 self.data(tilleuls_objects, first_day="2026-01-01", last_day="2026-01-08"))
        message = "L'absence du 01/01/2026 au 08/01/2026 sort du séjour (du 05/01/2026 au …)."
        assert response.context["form"].errors["first_day"] == [message]
        assert shows(response, "Premier jour d'absence", message)
        assert counts() == before

    def test_last_day_before_first(self, tilleuls, tilleuls_objects):
        before = counts()
        response = tilleuls.post(url("absence-add", tilleuls_objects),
                                 self.data(tilleuls_objects, first_day="2026-04-10", last_day="2026-04-08"))
        message = "Le dernier jour d'absence (08/04/2026) précède le premier (10/04/2026)."
        assert response.context["form"].errors["last_day"] == [message]
        assert shows(response, "Dernier jour d'absence", message)
        assert counts() == before

    def test_overlapping_absences(self, tilleuls, tilleuls_objects):
        before = counts()
        response = tilleuls.post(url("absence-add", tilleuls_objects),
                                 self.data(tilleuls_objects, first_day="2026-03-05", last_day="2026-03-07"))
        assert "Cette absence chevauche l'absence" in response.context["form"].errors["first_day"][0]
        assert counts() == before

    def test_edit_last_day_before_first(self, tilleuls, tilleuls_objects):
        absence = tilleuls_objects["absence"]
        response = tilleuls.post(url("absence-edit", tilleuls_objects, absence_pk=absence.pk),
                                 self.data(tilleuls_objects, first_day="2026-03-05", last_day="2026-03-02"))
        assert "précède le premier" in response.context["form"].errors["last_day"][0]
        absence.refresh_from_db()
        assert (absence.first_day, absence.last_day) == (date(2026, 3, 2), date(2026, 3, 5))

    def test_reason_of_another_establishment_is_not_offered(self, tilleuls, demo, tilleuls_objects):
        before = counts()
        verger_reason = demo["establishments"]["VER"].absence_reasons.get(code="H")
        response = tilleuls.post(url("absence-add", tilleuls_objects),
                                 self.data(tilleuls_objects, reason=verger_reason.pk))
        assert "reason" in response.context["form"].errors
        assert counts() == before


# --- Domicile de secours (billing-rules §3) ----------------------------------------------------------

@pytest.mark.django_db
class TestDomicileSecours:
    def test_creation_defaults_to_the_establishment_departement(self, tilleuls):
        response = tilleuls.post(url("create"), CREATE)
        assert response.status_code == 302
        resident = Resident.objects.get(last_name="Lambert")
        stay = resident.stays.get()
        assert resident.domicile_secours == stay.section.establishment.departement != ""

    def test_edited_in_the_billing_tab_and_checked(self, tilleuls, tilleuls_objects):
        resident = tilleuls_objects["resident"]
        response = tilleuls.post(url("billing-edit", tilleuls_objects), {"payment_mode": "cheque",
                                                                         "domicile_secours": "99"})
        assert response.context["form"].errors["domicile_secours"] == ["Code de département invalide."]
        resident.refresh_from_db()
        assert resident.domicile_secours != "99"
        response = tilleuls.post(url("billing-edit", tilleuls_objects), {"payment_mode": "cheque",
                                                                         "domicile_secours": "2A"})
        assert response.status_code == 302
        resident.refresh_from_db()
        assert resident.domicile_secours == "2A"
        page = tilleuls.get(url("detail", tilleuls_objects) + "?tab=billing").content.decode()
        assert "2A" in page and "APA sur décision individuelle" in page
