"""Resident notes: a dated thread (newest first) replacing the single free-text field, whose old text
became each resident's first note (data migration residents 0005)."""
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from residents.models import Resident, ResidentNote
from tests.factories import OrganisationFactory, ResidentFactory, StayFactory


def test_the_old_free_text_becomes_the_first_note(transactional_db):
    executor = MigrationExecutor(connection)
    executor.migrate([("residents", "0004_name_keys")])
    old = executor.loader.project_state([("residents", "0004_name_keys")]).apps
    OldResident = old.get_model("residents", "Resident")
    org = OrganisationFactory()
    with_text = OldResident.objects.create(organisation_id=org.pk, last_name="Ancien", first_name="Paul",
                                           birth_date="1930-01-01", notes="  Allergie à la pénicilline  ")
    OldResident.objects.create(organisation_id=org.pk, last_name="Vide", first_name="Luc", birth_date="1930-01-01",
                               notes="")
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    notes = list(ResidentNote.objects.filter(resident__organisation_id=org.pk).values_list("resident_id", "text"))
    assert notes == [(with_text.pk, "Allergie à la pénicilline")]
    assert Resident.objects.get(pk=with_text.pk).notes.count() == 1


@pytest.fixture
def resident(demo):
    resident = ResidentFactory(organisation=demo["organisation"])
    StayFactory(resident=resident, section=demo["sections"]["TIL-HP"])
    return resident


def url(resident, name="note-add"):
    return reverse(f"residents:{name}", kwargs={"alias": "TIL-HP", "pk": resident.pk})


def test_clerk_adds_dated_notes_shown_newest_first(client, resident):
    client.login(username="tilleuls", password="demo")
    assert client.post(url(resident), {"text": "Premier échange avec la fille"}).status_code == 302
    client.post(url(resident), {"text": "Dossier APA envoyé"})
    client.post(url(resident), {"text": "   "})  # empty: refused
    assert list(resident.notes.values_list("text", flat=True)) == ["Dossier APA envoyé", "Premier échange avec la fille"]
    page = client.get(url(resident, "detail") + "?tab=notes").content.decode()
    assert page.index("Dossier APA envoyé") < page.index("Premier échange") and "tilleuls" in page


def test_readers_and_other_sections_cannot_add_notes(client, resident):
    client.login(username="direction", password="demo")
    assert client.post(url(resident), {"text": "x"}).status_code == 403
    client.login(username="verger", password="demo")
    assert client.post(url(resident), {"text": "x"}).status_code == 404
    assert not resident.notes.exists()
