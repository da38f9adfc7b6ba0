"""Every resident URL is scoped to its section: other sections' objects are 404, readers get 403 on writes."""
from datetime import date

import pytest
from django.urls import reverse

from residents.models import Absence, GirAssessment, Relative, Resident, Stay
from tests.factories import AbsenceFactory, RelativeFactory, ResidentFactory, StayFactory

# (URL name, extra URL kwargs naming the object of the fixture dict, is a write URL)
OBJECT_URLS = [
    ("detail", {}, False),
    ("edit", {}, True),
    ("billing-edit", {}, True),
    ("relative-add", {}, True),
    ("relative-edit", {"relative_pk": "relative"}, True),
    ("relative-delete", {"relative_pk": "relative"}, True),
    ("stay-add", {}, True),
    ("stay-edit", {"stay_pk": "stay"}, True),
    ("transfer", {"stay_pk": "stay"}, True),
    ("gir-add", {}, True),
    ("absence-add", {}, True),
    ("absence-edit", {"absence_pk": "absence"}, True),
    ("absence-delete", {"absence_pk": "absence"}, True),
]
WRITE_URLS = [(name, kw) for name, kw, write in OBJECT_URLS if write]
NESTED_URLS = [(name, kw) for name, kw, _write in OBJECT_URLS if kw]


def url_for(name, alias, objects, children=None):
    """URL of ``name`` for ``objects["resident"]``; ``children`` may swap in another relative/stay/absence."""
    children = children or objects
    kwargs = {"alias": alias, "pk": objects["resident"].pk}
    for kwarg, key in OBJECT_URLS_KW[name].items():
        kwargs[kwarg] = children[key].pk
    return reverse(f"residents:{name}", kwargs=kwargs)


OBJECT_URLS_KW = {name: kw for name, kw, _write in OBJECT_URLS}


def valid_payload(name, objects, demo):
    """Data that the view would accept if it ran: a scoping hole would then really change something."""
    other_section = demo["sections"]["VER-AJ" if objects["section"].alias.startswith("VER") else "TIL-HT"]
    identity = {"civility": "MME", "last_name": "Piratée", "first_name": "Jeanne", "birth_date": "1935-04-12"}
    return {
        "detail": {},
        "edit": identity,
        "billing-edit": {"payment_mode": "transfer"},
        "relative-add": {"last_name": "Intrus"},
        "relative-edit": {"last_name": "Intrus"},
        "relative-delete": {},
        "stay-add": {"entry_date": "2025-01-01", "end_date": "2025-06-30", "end_reason": "departure"},
        "stay-edit": {"entry_date": "2026-01-05", "room": "999"},
        "transfer": {"target_section": other_section.pk, "transfer_date": "2026-06-01", "room": "1"},
        "gir-add": {"gir": 2, "valid_from": "2026-02-01"},
        "absence-add": {"stay": objects["stay"].pk, "reason": objects["absence"].reason_id,
                        "first_day": "2026-04-01", "last_day": "2026-04-03"},
        "absence-edit": {"stay": objects["stay"].pk, "reason": objects["absence"].reason_id,
                         "first_day": "2026-04-01", "last_day": "2026-04-03", "comment": "changé"},
        "absence-delete": {},
    }[name]


def snapshot():
    return {
        "residents": list(Resident.objects.values_list("pk", "last_name", "payment_mode", "updated_at")),
        "relatives": list(Relative.objects.values_list("pk", "last_name")),
        "stays": list(Stay.objects.values_list("pk", "entry_date", "end_date", "room", "section_id")),
        "girs": list(GirAssessment.objects.values_list("pk", "gir", "valid_from")),
        "absences": list(Absence.objects.values_list("pk", "first_day", "last_day", "comment")),
    }


@pytest.fixture
def tilleuls(client, demo):
    client.force_login(demo["users"]["tilleuls"])
    return client


@pytest.fixture
def direction(client, demo):
    client.force_login(demo["users"]["direction"])
    return client


# --- Positive control: the payloads are valid, so the 404/403 below are not accidents -------------

@pytest.mark.django_db
@pytest.mark.parametrize("name", [n for n, _kw, write in OBJECT_URLS if write])
def test_payloads_are_accepted_by_the_owner_of_the_section(client, demo, verger_objects, name):
    client.force_login(demo["users"]["verger"])
    before = snapshot()
    response = client.post(url_for(name, "VER-HP", verger_objects), valid_payload(name, verger_objects, demo))
    assert response.status_code == 302, response.context["form"].errors if response.context else response
    assert snapshot() != before


# --- Tilleuls (clerk on TIL-*) on Le Verger's objects: always 404 -------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("name", ["list", "create"])
def test_section_urls_of_an_ungranted_section_are_404(tilleuls, verger_objects, method, name):
    response = getattr(tilleuls, method)(reverse(f"residents:{name}", kwargs={"alias": "VER-HP"}))
    assert response.status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("name", [n for n, _kw, _w in OBJECT_URLS])
def test_other_establishment_objects_under_their_own_alias_are_404(tilleuls, demo, verger_objects, method, name):
    before = snapshot()
    url = url_for(name, "VER-HP", verger_objects)
    response = getattr(tilleuls, method)(url, valid_payload(name, verger_objects, demo) if method == "post" else None)
    assert response.status_code == 404
    assert snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("name", [n for n, _kw, _w in OBJECT_URLS])
def test_guessed_ids_under_a_granted_alias_are_404(tilleuls, demo, verger_objects, method, name):
    """/s/TIL-HP/residents/<Verger resident>/… — the ids exist, but not in this section."""
    before = snapshot()
    url = url_for(name, "TIL-HP", verger_objects)
    response = getattr(tilleuls, method)(url, valid_payload(name, verger_objects, demo) if method == "post" else None)
    assert response.status_code == 404
    assert snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("name", [n for n, _kw in NESTED_URLS])
def test_guessed_child_ids_under_an_own_resident_are_404(tilleuls, demo, tilleuls_objects, verger_objects,
                                                          method, name):
    """Own resident in the URL, but the relative / stay / absence id belongs to Le Verger."""
    before = snapshot()
    url = url_for(name, "TIL-HP", tilleuls_objects, children=verger_objects)
    response = getattr(tilleuls, method)(url, valid_payload(name, tilleuls_objects, demo) if method == "post" else None)
    assert response.status_code == 404
    assert snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("name", [n for n, _kw in NESTED_URLS])
def test_child_ids_of_another_resident_of_the_same_section_are_404(tilleuls, demo, tilleuls_objects, method, name):
    """Resident A in the URL with resident B's relative / stay / absence: 404, not B's data."""
    section = tilleuls_objects["section"]
    other = ResidentFactory(organisation=demo["organisation"], last_name="Voisine")
    other_stay = StayFactory(resident=other, section=section, entry_date=date(2026, 1, 5))
    children = {"relative": RelativeFactory(resident=other), "stay": other_stay,
                "absence": AbsenceFactory(stay=other_stay, reason=tilleuls_objects["absence"].reason,
                                          first_day=date(2026, 4, 20), last_day=date(2026, 4, 22))}
    before = snapshot()
    url = url_for(name, "TIL-HP", tilleuls_objects, children=children)
    response = getattr(tilleuls, method)(url, valid_payload(name, tilleuls_objects, demo) if method == "post" else None)
    assert response.status_code == 404
    assert snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize("name", [n for n, _kw, _w in OBJECT_URLS])
def test_resident_of_another_granted_section_is_404(tilleuls, tilleuls_objects, name):
    """TIL-HT is granted, but the resident has never stayed there."""
    assert tilleuls.get(url_for(name, "TIL-HT", tilleuls_objects)).status_code == 404


# --- Direction (lecture everywhere): reads, never writes ----------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("name", [n for n, _kw in WRITE_URLS])
def test_reader_gets_403_on_every_write_url(direction, demo, tilleuls_objects, method, name):
    before = snapshot()
    url = url_for(name, "TIL-HP", tilleuls_objects)
    response = getattr(direction, method)(url, valid_payload(name, tilleuls_objects, demo) if method == "post" else None)
    assert response.status_code == 403
    assert snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
def test_reader_gets_403_on_create(direction, method):
    before = Resident.objects.count()
    data = {"last_name": "X", "first_name": "Y", "birth_date": "1930-01-01", "stay-entry_date": "2026-01-01"}
    response = getattr(direction, method)(reverse("residents:create", kwargs={"alias": "TIL-HP"}),
                                          data if method == "post" else None)
    assert response.status_code == 403
    assert Resident.objects.count() == before


@pytest.mark.django_db
@pytest.mark.parametrize("tab", ["identity", "relatives", "stays", "absences", "billing"])
@pytest.mark.parametrize("key", ["tilleuls_objects", "verger_objects"])
def test_reader_reads_list_and_every_tab_without_edit_links(direction, request, tab, key):
    objects = request.getfixturevalue(key)
    alias = objects["section"].alias
    listing = direction.get(reverse("residents:list", kwargs={"alias": alias}))
    assert listing.status_code == 200
    assert objects["resident"].full_name in listing.content.decode()
    assert "Nouveau résident" not in listing.content.decode()
    response = direction.get(reverse("residents:detail", kwargs={"alias": alias, "pk": objects["resident"].pk}),
                             {"tab": tab})
    assert response.status_code == 200
    assert response.context["can_write"] is False
    html = response.content.decode()
    for name, _kw in WRITE_URLS:
        assert url_for(name, alias, objects) not in html, name
    assert 'method="post" action="/s/' not in html


@pytest.mark.django_db
def test_clerk_sees_a_link_to_every_write_url(tilleuls, tilleuls_objects):
    """The counterpart of the reader test: the links it looks for do exist for a clerk."""
    url = reverse("residents:detail", kwargs={"alias": "TIL-HP", "pk": tilleuls_objects["resident"].pk})
    html = "".join(tilleuls.get(url, {"tab": tab}).content.decode()
                   for tab in ("identity", "relatives", "stays", "absences", "billing"))
    for name, _kw in WRITE_URLS:
        assert url_for(name, "TIL-HP", tilleuls_objects) in html, name
    assert "Nouveau résident" in tilleuls.get(reverse("residents:list", kwargs={"alias": "TIL-HP"})).content.decode()


@pytest.mark.django_db
def test_anonymous_is_sent_to_login(client, tilleuls_objects):
    url = reverse("residents:detail", kwargs={"alias": "TIL-HP", "pk": tilleuls_objects["resident"].pk})
    response = client.get(url)
    assert response.status_code == 302 and response.url.startswith("/connexion/")


@pytest.mark.django_db
def test_stays_tab_hides_stays_of_unreadable_sections(client, demo, tilleuls_objects):
    """A resident with stays in TIL-HP and VER-HP: tilleuls sees only the TIL-HP one."""
    StayFactory(resident=tilleuls_objects["resident"], section=demo["sections"]["VER-HP"],
                entry_date=date(2024, 1, 1), end_date=date(2024, 12, 31), end_reason="departure")
    client.force_login(demo["users"]["tilleuls"])
    url = reverse("residents:detail", kwargs={"alias": "TIL-HP", "pk": tilleuls_objects["resident"].pk})
    stays = client.get(url, {"tab": "stays"}).context["stays"]
    assert [s.section.alias for s in stays] == ["TIL-HP"]
    client.force_login(demo["users"]["direction"])
    stays = client.get(url, {"tab": "stays"}).context["stays"]
    assert sorted(s.section.alias for s in stays) == ["TIL-HP", "VER-HP"]
