"""Django admin: every page loads, non-superuser staff are scoped to their sections, changes are audited."""
import pytest
from auditlog.models import LogEntry
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.urls import reverse

from residents.models import Absence, PaymentMode, Resident, Stay
from structures.models import Section, SectionAccess
from tests.factories import AbsenceFactory, SectionAccessFactory, UserFactory

pytestmark = pytest.mark.django_db

REGISTERED = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def data(demo_with_residents):
    demo = demo_with_residents
    # Make sure every scoped model has rows on both sides (the demo has few absences).
    for alias in ("TIL-HP", "VER-HP"):
        stay = Stay.objects.filter(section=demo["sections"][alias]).first()
        AbsenceFactory(stay=stay, reason=stay.section.establishment.absence_reasons.get(code="H"))
    return demo


@pytest.fixture
def admin_client_(client, data):
    client.force_login(data["users"]["admin"])
    return client


@pytest.fixture
def til_manager(client, data):
    """Staff user, *responsable* of TIL-HP only, with the model permissions to use the admin."""
    user = UserFactory(username="chef-til", is_staff=True)
    SectionAccessFactory(user=user, section=data["sections"]["TIL-HP"], role=SectionAccess.Role.MANAGER)
    codenames = [f"{action}_{model}" for action in ("view", "change", "add")
                 for model in ("resident", "stay", "absence", "relative", "girassessment", "absencereason",
                               "section", "sectionaccess", "establishment", "organisation")]
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return user


def _url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.mark.parametrize("model", [m for m, _ in REGISTERED], ids=[m._meta.label for m, _ in REGISTERED])
def test_every_changelist_and_change_page_loads_for_superuser(admin_client_, model):
    model_admin = admin.site._registry[model]
    response = admin_client_.get(_url(model, "changelist"))
    assert response.status_code == 200, model._meta.label
    # With a search and every list filter's first choice too.
    if model_admin.search_fields:
        assert admin_client_.get(_url(model, "changelist"), {"q": "a"}).status_code == 200
    obj = model._default_manager.order_by("pk").first()
    if obj is not None:
        assert admin_client_.get(_url(model, "change", obj.pk)).status_code == 200, model._meta.label
    if model_admin.has_add_permission(response.wsgi_request):
        assert admin_client_.get(_url(model, "add")).status_code == 200, model._meta.label


def test_admin_index_lists_the_apps(admin_client_):
    html = admin_client_.get(reverse("admin:index")).content.decode()
    for label in ("Résidents", "Structures", "Socle"):
        assert label in html


def _changelist_rows(client, model):
    response = client.get(_url(model, "changelist"))
    assert response.status_code == 200
    return response, list(response.context["cl"].queryset)


def test_manager_sees_only_his_section_in_resident_changelist(client, data, til_manager):
    response, residents = _changelist_rows(client, Resident)
    expected = set(Resident.objects.filter(stays__section__alias="TIL-HP"))
    assert expected and set(residents) == expected
    html = response.content.decode()
    for resident in Resident.objects.exclude(stays__section__alias="TIL-HP"):
        assert _url(Resident, "change", resident.pk) not in html


def test_manager_sees_only_his_section_in_stay_and_absence_changelists(client, data, til_manager):
    _, stays = _changelist_rows(client, Stay)
    assert stays and {s.section.alias for s in stays} == {"TIL-HP"}
    assert len(stays) == Stay.objects.filter(section__alias="TIL-HP").count()

    _, absences = _changelist_rows(client, Absence)
    assert absences and {a.stay.section.alias for a in absences} == {"TIL-HP"}

    _, sections = _changelist_rows(client, Section)
    assert [s.alias for s in sections] == ["TIL-HP"]


def test_manager_cannot_open_a_verger_resident(client, data, til_manager):
    resident = Resident.objects.filter(stays__section__alias="VER-HP").first()
    response = client.get(_url(Resident, "change", resident.pk))
    assert response.status_code in (302, 404)
    if response.status_code == 302:
        assert response["Location"] == reverse("admin:index")
    # Nor change it by posting.
    client.post(_url(Resident, "change", resident.pk), {"payment_mode": "cash"})
    resident.refresh_from_db()
    assert resident.payment_mode != "cash"


def test_manager_cannot_pick_another_section_in_forms(client, data, til_manager):
    response = client.get(_url(SectionAccess, "add"))
    choices = list(response.context["adminform"].form.fields["section"].queryset)
    assert [s.alias for s in choices] == ["TIL-HP"]

    other = UserFactory(username="nouvelle")
    response = client.post(_url(SectionAccess, "add"), {"user": other.pk, "section": data["sections"]["VER-HP"].pk,
                                                        "role": "manager"})
    assert response.status_code == 200  # the form is shown again with an error
    assert "section" in response.context["adminform"].form.errors
    assert not SectionAccess.objects.filter(user=other).exists()

    response = client.get(_url(Stay, "add"))
    assert [s.alias for s in response.context["adminform"].form.fields["section"].queryset] == ["TIL-HP"]


def test_superuser_sees_every_section(admin_client_, data):
    _, stays = _changelist_rows(admin_client_, Stay)
    assert {s.section.alias for s in stays} == set(Stay.objects.values_list("section__alias", flat=True))
    assert len({s.section.alias for s in stays}) == 4


def _post_data_from_change_form(response) -> dict:
    """The values a browser would post back unchanged, from an admin change page's context."""
    data = {}

    def add(form):
        for name, field in form.fields.items():
            value = form[name].value()
            key = form.add_prefix(name)
            if value is None or value is False:
                continue
            if value is True:
                data[key] = "on"
            elif isinstance(value, (list, tuple)):
                data[key] = [str(v) for v in value]
            else:
                data[key] = str(value)

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        add(formset.management_form)
        for form in formset.initial_forms:
            add(form)
    return data


def test_changing_payment_mode_in_admin_is_audited(admin_client_, data):
    resident = Resident.objects.filter(stays__section__alias="TIL-HP").exclude(payment_mode=PaymentMode.CASH).first()
    old_mode = resident.payment_mode
    url = _url(Resident, "change", resident.pk)
    post = _post_data_from_change_form(admin_client_.get(url))
    post["payment_mode"] = PaymentMode.CASH
    before = LogEntry.objects.count()

    response = admin_client_.post(url, post)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    resident.refresh_from_db()
    assert resident.payment_mode == PaymentMode.CASH

    entries = LogEntry.objects.get_for_object(resident).filter(action=LogEntry.Action.UPDATE)
    assert LogEntry.objects.count() == before + 1  # only the field that changed, no inline noise
    entry = entries.latest("timestamp")
    assert entry.actor == data["users"]["admin"]
    assert entry.changes_dict == {"payment_mode": [old_mode, PaymentMode.CASH]}

    # The audit log is readable in the admin.
    changelist = admin_client_.get(_url(LogEntry, "changelist"))
    assert changelist.status_code == 200
    assert str(resident) in changelist.content.decode()
    detail = admin_client_.get(_url(LogEntry, "change", entry.pk))
    assert detail.status_code == 200
    html = detail.content.decode()
    assert "Mode de règlement" in html and f"<td>{old_mode}</td><td>cash</td>" in html
