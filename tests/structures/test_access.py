"""structures.access — the one place deciding who may read or change which section."""
import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404

from structures import access
from structures.models import SectionAccess
from tests.factories import SectionAccessFactory, UserFactory

pytestmark = pytest.mark.django_db
Role = SectionAccess.Role
ALL = {"TIL-HP", "TIL-HT", "VER-HP", "VER-AJ"}


def aliases(qs):
    return {s.alias for s in qs}


@pytest.fixture
def manager(demo):
    user = UserFactory(username="chef-til")
    SectionAccessFactory(user=user, section=demo["sections"]["TIL-HP"], role=Role.MANAGER)
    SectionAccessFactory(user=user, section=demo["sections"]["TIL-HT"], role=Role.READER)
    return user


def test_roles_are_ordered():
    assert access.roles_at_least(Role.READER) == [Role.READER, Role.CLERK, Role.MANAGER]
    assert access.roles_at_least(Role.CLERK) == [Role.CLERK, Role.MANAGER]
    assert access.roles_at_least(Role.MANAGER) == [Role.MANAGER]


@pytest.mark.parametrize(
    ("login", "reader", "clerk", "manager"),
    [
        ("admin", ALL, ALL, ALL),
        ("tilleuls", {"TIL-HP", "TIL-HT"}, {"TIL-HP", "TIL-HT"}, set()),
        ("verger", {"VER-HP", "VER-AJ"}, {"VER-HP", "VER-AJ"}, set()),
        ("direction", ALL, set(), set()),
    ],
)
def test_sections_for_each_demo_role(demo, login, reader, clerk, manager):
    user = demo["users"][login]
    assert aliases(access.sections_for(user)) == reader
    assert aliases(access.sections_for(user, Role.READER)) == reader
    assert aliases(access.sections_for(user, Role.CLERK)) == clerk
    assert aliases(access.sections_for(user, Role.MANAGER)) == manager


def test_sections_for_manager_and_mixed_roles(manager):
    assert aliases(access.sections_for(manager)) == {"TIL-HP", "TIL-HT"}
    assert aliases(access.sections_for(manager, Role.CLERK)) == {"TIL-HP"}
    assert aliases(access.sections_for(manager, Role.MANAGER)) == {"TIL-HP"}


def test_sections_for_has_no_duplicates_and_loads_the_tree_in_one_query(demo, django_assert_num_queries):
    qs = access.sections_for(demo["users"]["direction"])
    with django_assert_num_queries(1):
        sections = list(qs)
        assert {s.establishment.organisation.name for s in sections} == {"Les Quatre Saisons"}
    assert len(sections) == 4


def test_user_without_any_access_sees_nothing(demo):
    nobody = UserFactory(username="personne")
    assert aliases(access.sections_for(nobody)) == set()
    assert access.role_in(nobody, demo["sections"]["TIL-HP"]) is None
    assert not access.has_role(nobody, demo["sections"]["TIL-HP"], Role.READER)


@pytest.mark.parametrize("login", ["tilleuls", "admin"])
def test_inactive_user_has_no_access(demo, login):
    user = demo["users"][login]
    user.is_active = False
    user.save()
    section = demo["sections"]["TIL-HP"]
    assert aliases(access.sections_for(user)) == set()
    assert access.role_in(user, section) is None
    assert not access.has_role(user, section, Role.READER)
    with pytest.raises(Http404):
        access.section_for_user_or_404(user, "TIL-HP")


@pytest.mark.parametrize("user", [AnonymousUser(), None])
def test_anonymous_has_no_access(demo, user):
    section = demo["sections"]["TIL-HP"]
    assert aliases(access.sections_for(user)) == set()
    assert access.role_in(user, section) is None
    assert not access.has_role(user, section, Role.READER)
    with pytest.raises(PermissionDenied):
        access.require_role(user, section, Role.READER)


def test_role_in_and_has_role(demo, manager):
    s = demo["sections"]
    assert access.role_in(demo["users"]["admin"], s["VER-AJ"]) == Role.MANAGER  # superuser
    assert access.role_in(demo["users"]["tilleuls"], s["TIL-HP"]) == Role.CLERK
    assert access.role_in(demo["users"]["tilleuls"], s["VER-HP"]) is None
    assert access.role_in(demo["users"]["direction"], s["VER-HP"]) == Role.READER
    assert access.role_in(manager, s["TIL-HP"]) == Role.MANAGER

    assert access.has_role(demo["users"]["tilleuls"], s["TIL-HP"], Role.READER)
    assert access.has_role(demo["users"]["tilleuls"], s["TIL-HP"], Role.CLERK)
    assert not access.has_role(demo["users"]["tilleuls"], s["TIL-HP"], Role.MANAGER)
    assert not access.has_role(demo["users"]["direction"], s["TIL-HP"], Role.CLERK)
    assert access.has_role(manager, s["TIL-HP"], Role.MANAGER)
    assert not access.has_role(manager, s["TIL-HT"], Role.CLERK)
    assert access.has_role(demo["users"]["admin"], s["TIL-HT"], Role.MANAGER)


def test_section_for_user_or_404(demo):
    tilleuls = demo["users"]["tilleuls"]
    assert access.section_for_user_or_404(tilleuls, "TIL-HT") == demo["sections"]["TIL-HT"]
    with pytest.raises(Http404):
        access.section_for_user_or_404(tilleuls, "VER-HP")  # exists, not granted: same as unknown
    with pytest.raises(Http404):
        access.section_for_user_or_404(tilleuls, "NOPE")
    assert access.section_for_user_or_404(demo["users"]["admin"], "VER-AJ").alias == "VER-AJ"


def test_require_role(demo):
    s = demo["sections"]
    access.require_role(demo["users"]["tilleuls"], s["TIL-HP"], Role.CLERK)  # no exception
    with pytest.raises(PermissionDenied):
        access.require_role(demo["users"]["direction"], s["TIL-HP"], Role.CLERK)
    with pytest.raises(PermissionDenied):
        access.require_role(demo["users"]["tilleuls"], s["TIL-HP"], Role.MANAGER)
    with pytest.raises(PermissionDenied):
        access.require_role(demo["users"]["tilleuls"], s["VER-HP"], Role.READER)
