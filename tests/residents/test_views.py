"""Happy paths of the resident file: create, edit, relatives, stays, transfer, GIR, absences."""
from datetime import date

import pytest
from django.urls import reverse

from residents.models import Absence, GirAssessment, Relative, Resident, Stay
from tests.factories import ResidentFactory, StayFactory


@pytest.fixture
def tilleuls(client, demo):
    client.force_login(demo["users"]["tilleuls"])
    return client


def url(name, alias="TIL-HP", **kwargs):
    return reverse(f"residents:{name}", kwargs={"alias": alias, **kwargs})


@pytest.mark.django_db
def test_create_resident_with_first_stay_gir_and_relative(tilleuls, demo):
    response = tilleuls.post(url("create"), {
        "civility": "MME", "last_name": "Lambert", "birth_name": "Girard", "first_name": "Odette",
        "birth_date": "1938-02-03", "birth_place": "Lyon", "nir": "2 38 02 69 123 456 15",
        "address": "3 rue Neuve", "postal_code": "69002", "city": "Lyon", "phone": "04 78 00 00 00",
        "email": "odette@example.org", "external_ref": "EXT-9", "payment_mode": "direct_debit",
        "stay-entry_date": "2026-03-01", "stay-room": "12", "stay-gir": "3",
        "relative-last_name": "Lambert", "relative-first_name": "Paul", "relative-relationship": "FILS",
        "relative-email": "paul@example.org", "relative-phone": "06 00 00 00 00",
        "relative-receives_invoices": "on", "relative-is_payer": "on",
    })
    resident = Resident.objects.get(external_ref="EXT-9")
    assert response.status_code == 302
    assert response.url == url("detail", pk=resident.pk)
    assert resident.organisation == demo["organisation"]
    assert resident.nir == "238026912345615"
    assert resident.payment_mode == "direct_debit"
    stay = resident.stays.get()
    assert (stay.section.alias, stay.entry_date, stay.room) == ("TIL-HP", date(2026, 3, 1), "12")
    assert resident.gir_on(date(2026, 3, 1)) == 3
    relative = resident.relatives.get()
    assert (relative.first_name, relative.receives_invoices, relative.is_payer, relative.is_guardian) == (
        "Paul", True, True, False)
    page = tilleuls.get(response.url, {"tab": "relatives"}).content.decode()
    assert "destinataire des factures" in page and "payeur" in page


@pytest.mark.django_db
def test_create_without_relative(tilleuls):
    response = tilleuls.post(url("create"), {"last_name": "Seul", "first_name": "Jean", "birth_date": "1940-01-01",
                                             "payment_mode": "cheque", "stay-entry_date": "2026-03-01"})
    assert response.status_code == 302
    resident = Resident.objects.get(last_name="Seul")
    assert resident.relatives.count() == 0 and resident.gir_assessments.count() == 0


@pytest.mark.django_db
def test_create_form_renders_three_parts(tilleuls):
    html = tilleuls.get(url("create")).content.decode()
    for name in ('name="last_name"', 'name="nir"', 'name="stay-entry_date"', 'name="stay-gir"',
                 'name="relative-last_name"', 'name="relative-receives_invoices"', 'name="payment_mode"'):
        assert name in html


@pytest.mark.django_db
def test_edit_identity_and_billing(tilleuls, tilleuls_objects):
    resident = tilleuls_objects["resident"]
    response = tilleuls.post(url("edit", pk=resident.pk), {
        "civility": "MME", "last_name": "Tilleulin", "first_name": "Jeanne-Marie", "birth_date": "1935-04-12",
        "nir": "2 35 04 69 123 456 97"})
    assert response.status_code == 302
    resident.refresh_from_db()
    assert (resident.first_name, resident.nir) == ("Jeanne-Marie", "235046912345697")
    response = tilleuls.post(url("billing-edit", pk=resident.pk), {"payment_mode": "transfer"})
    assert response.url.endswith("?tab=billing")
    resident.refresh_from_db()
    assert resident.payment_mode == "transfer"
    page = tilleuls.get(url("detail", pk=resident.pk), {"tab": "billing"}).content.decode()
    assert "Virement" in page and "SEPA" in page


@pytest.mark.django_db
def test_relative_add_edit_delete(tilleuls, tilleuls_objects):
    resident, first = tilleuls_objects["resident"], tilleuls_objects["relative"]
    response = tilleuls.post(url("relative-add", pk=resident.pk),
                             {"last_name": "Neveu", "first_name": "Luc", "is_guardian": "on"})
    assert response.status_code == 302 and response.url.endswith("?tab=relatives")
    nephew = resident.relatives.get(last_name="Neveu")
    assert nephew.is_guardian
    # Moving the invoices to the nephew: untick the first one, then tick the nephew.
    tilleuls.post(url("relative-edit", pk=resident.pk, relative_pk=first.pk), {"last_name": first.last_name})
    response = tilleuls.post(url("relative-edit", pk=resident.pk, relative_pk=nephew.pk),
                             {"last_name": "Neveu", "receives_invoices": "on", "is_guardian": "on"})
    assert response.status_code == 302
    assert list(resident.relatives.filter(receives_invoices=True)) == [nephew]
    delete_url = url("relative-delete", pk=resident.pk, relative_pk=first.pk)
    confirm = tilleuls.get(delete_url)
    assert confirm.status_code == 200 and "Supprimer définitivement" in confirm.content.decode()
    assert Relative.objects.filter(pk=first.pk).exists()  # GET deletes nothing
    assert tilleuls.post(delete_url).status_code == 302
    assert not Relative.objects.filter(pk=first.pk).exists()


@pytest.mark.django_db
def test_add_past_stay_and_close_current_one(tilleuls, tilleuls_objects):
    resident, stay = tilleuls_objects["resident"], tilleuls_objects["stay"]
    response = tilleuls.post(url("stay-add", pk=resident.pk), {
        "entry_date": "2025-02-01", "end_date": "2025-03-31", "end_reason": "departure", "room": "7"})
    assert response.status_code == 302 and response.url.endswith("?tab=stays")
    assert resident.stays.filter(section__alias="TIL-HP").count() == 2
    response = tilleuls.post(url("stay-edit", pk=resident.pk, stay_pk=stay.pk), {
        "entry_date": "2026-01-05", "room": "104", "end_date": "2026-08-15", "end_reason": "death",
        "room_emptied_on": "2026-08-20"})
    assert response.status_code == 302
    stay.refresh_from_db()
    assert (stay.end_date, stay.end_reason, stay.room_emptied_on) == (date(2026, 8, 15), "death", date(2026, 8, 20))


@pytest.mark.django_db
def test_transfer_keeps_history_and_resident_in_both_sections(tilleuls, demo, tilleuls_objects):
    resident, stay = tilleuls_objects["resident"], tilleuls_objects["stay"]
    form_page = tilleuls.get(url("transfer", pk=resident.pk, stay_pk=stay.pk))
    # Only sections of the association where tilleuls bills, other than this one.
    assert [s.alias for s in form_page.context["form"].fields["target_section"].queryset] == ["TIL-HT"]
    assert "la veille du transfert" in form_page.content.decode()

    response = tilleuls.post(url("transfer", pk=resident.pk, stay_pk=stay.pk), {
        "target_section": demo["sections"]["TIL-HT"].pk, "transfer_date": "2026-06-01", "room": "T2"})
    assert response.status_code == 302
    stay.refresh_from_db()
    assert (stay.end_date, stay.end_reason) == (date(2026, 5, 31), Stay.EndReason.TRANSFER)
    new = resident.stays.get(section__alias="TIL-HT")
    assert (new.entry_date, new.room, new.transferred_from) == (date(2026, 6, 1), "T2", stay)
    assert new.end_date is None

    # Visible in both sections; both stays shown in either file.
    assert tilleuls.get(url("detail", pk=resident.pk)).status_code == 200
    assert tilleuls.get(url("detail", alias="TIL-HT", pk=resident.pk)).status_code == 200
    stays = tilleuls.get(url("detail", alias="TIL-HT", pk=resident.pk), {"tab": "stays"})
    assert [s.section.alias for s in stays.context["stays"]] == ["TIL-HT", "TIL-HP"]
    assert "transféré depuis TIL-HP" in stays.content.decode()
    assert resident in tilleuls.get(url("list", alias="TIL-HT"), {"presence": "all"}).context["object_list"]
    assert resident in tilleuls.get(url("list"), {"presence": "all"}).context["object_list"]


@pytest.mark.django_db
def test_gir_history(tilleuls, tilleuls_objects):
    resident = tilleuls_objects["resident"]
    tilleuls.post(url("gir-add", pk=resident.pk), {"gir": "4", "valid_from": "2026-01-05"})
    response = tilleuls.post(url("gir-add", pk=resident.pk), {"gir": "2", "valid_from": "2026-05-01"})
    assert response.status_code == 302 and response.url.endswith("?tab=stays")
    assert list(GirAssessment.objects.filter(resident=resident).values_list("gir", flat=True)) == [2, 4]
    page = tilleuls.get(url("detail", pk=resident.pk), {"tab": "stays"})
    assert [g.gir for g in page.context["girs"]] == [2, 4]
    assert "01/05/2026" in page.content.decode() and "aucun forfait" in page.content.decode() and "Forfait et prises en charge" in page.content.decode()


@pytest.mark.django_db
def test_absence_add_edit_delete(tilleuls, tilleuls_objects):
    resident, stay, absence = tilleuls_objects["resident"], tilleuls_objects["stay"], tilleuls_objects["absence"]
    form = tilleuls.get(url("absence-add", pk=resident.pk)).context["form"]
    assert form.initial["stay"] == stay
    assert sorted(r.code for r in form.fields["reason"].queryset) == ["C", "H", "P", "S"]
    reason = form.fields["reason"].queryset.get(code="C")
    response = tilleuls.post(url("absence-add", pk=resident.pk), {
        "stay": stay.pk, "reason": reason.pk, "first_day": "2026-04-10", "last_day": "2026-04-12",
        "comment": "Chez sa fille"})
    assert response.status_code == 302 and response.url.endswith("?tab=absences")
    created = Absence.objects.get(comment="Chez sa fille")
    assert created.days == 3 and created.source == "manual"
    response = tilleuls.post(url("absence-edit", pk=resident.pk, absence_pk=created.pk), {
        "stay": stay.pk, "reason": reason.pk, "first_day": "2026-04-10", "last_day": "2026-04-14"})
    created.refresh_from_db()
    assert created.last_day == date(2026, 4, 14)
    page = tilleuls.get(url("detail", pk=resident.pk), {"tab": "absences"}).content.decode()
    assert "14/04/2026" in page
    assert tilleuls.get(url("absence-delete", pk=resident.pk, absence_pk=absence.pk)).status_code == 200
    assert tilleuls.post(url("absence-delete", pk=resident.pk, absence_pk=absence.pk)).status_code == 302
    assert not Absence.objects.filter(pk=absence.pk).exists()


# --- List ----------------------------------------------------------------------------------------

@pytest.mark.django_db
class TestList:
    @pytest.fixture
    def residents(self, demo):
        til, ver = demo["sections"]["TIL-HP"], demo["sections"]["VER-HP"]
        org = demo["organisation"]
        present = ResidentFactory(organisation=org, last_name="Présente", external_ref="REF-P")
        StayFactory(resident=present, section=til, entry_date=date(2025, 1, 1), room="214")
        left = ResidentFactory(organisation=org, last_name="Partie", external_ref="REF-L")
        StayFactory(resident=left, section=til, entry_date=date(2024, 1, 1), end_date=date(2025, 1, 31),
                    end_reason="departure", room="101")
        elsewhere = ResidentFactory(organisation=org, last_name="Ailleurs")
        StayFactory(resident=elsewhere, section=ver, entry_date=date(2025, 1, 1), room="214")
        return {"present": present, "left": left, "elsewhere": elsewhere}

    def names(self, client, **params):
        return [r.last_name for r in client.get(url("list"), params).context["object_list"]]

    def test_presence_filter(self, tilleuls, residents):
        assert self.names(tilleuls) == ["Présente"]
        assert self.names(tilleuls, presence="left") == ["Partie"]
        assert self.names(tilleuls, presence="all") == ["Partie", "Présente"]
        assert self.names(tilleuls, presence="nonsense") == ["Présente"]

    def test_search_by_name_reference_and_room(self, tilleuls, residents):
        assert self.names(tilleuls, q="prés") == ["Présente"]
        assert self.names(tilleuls, q="REF-L", presence="all") == ["Partie"]
        assert self.names(tilleuls, q="214", presence="all") == ["Présente"]  # not Ailleurs (VER-HP)
        assert self.names(tilleuls, q="Ailleurs", presence="all") == []

    def test_columns(self, tilleuls, residents):
        html = tilleuls.get(url("list"), {"presence": "all"}).content.decode()
        for text in ("PRÉSENTE Jeanne", "12/04/1935", "214", "01/01/2025", "REF-P", "31/01/2025", "Départ",
                     url("detail", pk=residents["present"].pk), "Nouveau résident"):
            assert text in html, text
        assert "AILLEURS" not in html

    def test_pagination_keeps_the_query(self, tilleuls, demo):
        for n in range(30):
            StayFactory(resident=ResidentFactory(organisation=demo["organisation"], last_name=f"Dupont{n:02d}"),
                        section=demo["sections"]["TIL-HP"], entry_date=date(2025, 1, 1))
        first = tilleuls.get(url("list"), {"q": "dupont", "presence": "all"})
        assert len(first.context["object_list"]) == 25
        assert "?q=dupont&amp;presence=all&amp;page=2" in first.content.decode()
        second = tilleuls.get(url("list"), {"q": "dupont", "presence": "all", "page": 2})
        assert len(second.context["object_list"]) == 5
        assert "?q=dupont&amp;presence=all&amp;page=1" in second.content.decode()


@pytest.mark.django_db
def test_day_care_attendance_weekdays_saved_and_shown(tilleuls, tilleuls_objects):
    resident, stay = tilleuls_objects["resident"], tilleuls_objects["stay"]
    response = tilleuls.post(url("stay-edit", pk=resident.pk, stay_pk=stay.pk), {
        "entry_date": "2026-01-05", "room": "104", "attendance": ["3", "1"]})
    assert response.status_code == 302
    stay.refresh_from_db()
    assert stay.attendance_weekdays == "1,3" and stay.attendance_weekday_set == frozenset({1, 3})
    page = tilleuls.get(url("detail", pk=resident.pk) + "?tab=stays").content.decode()
    assert "présent le mar., jeu." in page
    form = tilleuls.get(url("stay-edit", pk=resident.pk, stay_pk=stay.pk)).context["form"]
    assert form.initial["attendance"] == ["1", "3"]
