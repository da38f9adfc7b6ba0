"""Social-aid (ASH) applications on the resident's file (tab « Aide sociale »): the service's rules in
French, the screens (list, add, edit, link to the decision) scoped to the section of the URL, the admin,
and the pre-flight warning for an application pending more than N months.

Hand-made data: section APP-A (établissement in 38), MARTIN entered 01/01/2026; CD38 (département), MUT
(mutuelle); APP-B is another section of the same establishment with its own resident."""
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from billing.models import BillingPeriod
from billing.services.checks import EXTRA_PERIOD_CHECKS, period_checks
from billing.services.social_aid_checks import social_aid_pending_too_long
from payers.models import Payer, SocialAidApplication, SocialAidDecision
from payers.services.social_aid import application_save
from structures.models import SectionAccess
from tests.billing.payment_helpers import resident_in
from tests.factories import SectionAccessFactory, SectionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def site():
    section = SectionFactory(alias="APP-A")
    section.establishment.departement = "38"
    section.establishment.save()
    other = SectionFactory(alias="APP-B", establishment=section.establishment)
    organisation = section.establishment.organisation
    cd38 = Payer.objects.create(organisation=organisation, code="CD38", name="Département de l'Isère",
                                kind=Payer.Kind.DEPARTEMENT, departement="38")
    mutual = Payer.objects.create(organisation=organisation, code="MUT", name="Mutuelle", kind=Payer.Kind.MUTUAL)
    martin = resident_in(section, last_name="MARTIN")
    stranger = resident_in(other, last_name="AUTRE")
    clerk = UserFactory(username="clerk-app")
    SectionAccessFactory(user=clerk, section=section, role=SectionAccess.Role.CLERK)
    reader = UserFactory(username="reader-app")
    SectionAccessFactory(user=reader, section=section, role=SectionAccess.Role.READER)
    return {"section": section, "other": other, "cd38": cd38, "mutual": mutual, "martin": martin,
            "stay": martin.stays.get(), "stranger": stranger, "stranger_stay": stranger.stays.get(),
            "clerk": clerk, "reader": reader}


def _url(name, alias="APP-A", **kwargs):
    return reverse(f"payers:{name}", kwargs={"alias": alias, **kwargs})


def _form(site, **overrides):
    data = {"stay": site["stay"].pk, "payer": site["cd38"].pk, "filed_on": "2026-01-15", "status": "pending",
            "decided_on": "", "decision": "", "note": "Dossier complet remis au CCAS"}
    data.update(overrides)
    return data


# --- Service ---------------------------------------------------------------------------------------

def test_service_refuses_inconsistent_applications_in_french(site):
    def save(**fields):
        values = {"stay": site["stay"], "payer": site["cd38"], "filed_on": date(2026, 1, 15)}
        values.update(fields)
        with pytest.raises(ValidationError) as exc:
            application_save(application=SocialAidApplication(**values))
        return exc.value.message_dict

    assert "nature « Mutuelle »" in save(payer=site["mutual"])["payer"][0]
    assert save(decided_on=date(2026, 2, 1))["decided_on"][0].startswith(
        "Une demande en attente n'a pas de date de décision (saisi : 01/02/2026)")
    assert save(status="refused")["decided_on"] == ["Indiquez la date de la décision (demande « Refusée »)."]
    assert save(status="granted", decided_on=date(2026, 1, 10))["decided_on"] == [
        "La décision du 10/01/2026 précède le dépôt du dossier du 15/01/2026."]
    assert "postérieur à aujourd'hui" in save(filed_on=date(2099, 1, 1))["filed_on"][0]
    application_save(application=SocialAidApplication(stay=site["stay"], payer=site["cd38"],
                                                      filed_on=date(2026, 1, 15)))
    assert save(filed_on=date(2026, 1, 20))["status"] == [
        "Une autre demande est déjà en attente pour ce séjour (déposée le 15/01/2026)."]
    foreign = SocialAidDecision.objects.create(stay=site["stranger_stay"], payer=site["cd38"],
                                               valid_from=date(2026, 1, 1), monthly_resources=Decimal("1000.00"))
    assert save(status="granted", decided_on=date(2026, 3, 1), decision=foreign,
                filed_on=date(2026, 1, 2))["decision"][0].startswith("La décision ASH CD38")


def test_a_granted_application_is_linked_to_the_stays_single_decision(site):
    application = application_save(application=SocialAidApplication(stay=site["stay"], payer=site["cd38"],
                                                                    filed_on=date(2026, 1, 15)))
    decision = SocialAidDecision.objects.create(stay=site["stay"], payer=site["cd38"], decision_reference="ASH-42",
                                                valid_from=date(2026, 1, 1), monthly_resources=Decimal("1200.00"))
    application.status, application.decided_on = SocialAidApplication.Status.GRANTED, date(2026, 4, 2)
    application_save(application=application)
    application.refresh_from_db()
    assert application.decision == decision
    assert SocialAidDecision.objects.get(pk=decision.pk).application == application
    # The same decision cannot close a second application.
    second = SocialAidApplication(stay=site["stay"], payer=site["cd38"], filed_on=date(2026, 4, 3), status="granted",
                                  decided_on=date(2026, 4, 10), decision=decision)
    with pytest.raises(ValidationError) as exc:
        application_save(application=second)
    assert exc.value.message_dict["decision"] == [f"La décision {decision} est déjà liée à une autre demande."]


# --- Screens ---------------------------------------------------------------------------------------

def test_tab_add_edit_and_grant(client, site):
    client.force_login(site["clerk"])
    martin = site["martin"]
    detail = client.get(reverse("residents:detail", kwargs={"alias": "APP-A", "pk": martin.pk})).content.decode()
    assert 'data-tab="social_aid"' in detail and _url("resident-social-aid", pk=martin.pk) in detail
    page = client.get(_url("resident-social-aid", pk=martin.pk)).content.decode()
    assert "Aucune demande d'aide sociale." in page and 'id="application-add"' in page
    form = client.get(_url("resident-social-aid-add", pk=martin.pk)).context["form"]
    assert form.initial["payer"] == site["cd38"] and form.initial["stay"] == site["stay"]
    assert list(form.fields["payer"].queryset) == [site["cd38"]]  # départements of the association only
    response = client.post(_url("resident-social-aid-add", pk=martin.pk), _form(site))
    assert response.status_code == 302 and response["Location"] == _url("resident-social-aid", pk=martin.pk)
    application = SocialAidApplication.objects.get()
    assert application.is_pending and application.updated_by == site["clerk"]
    page = client.get(_url("resident-social-aid", pk=martin.pk)).content.decode()
    assert "15/01/2026" in page and "En attente" in page and "Dossier complet remis au CCAS" in page
    # Granted without a date: the form says which field and why.
    edit = _url("resident-social-aid-edit", pk=martin.pk, application_pk=application.pk)
    response = client.post(edit, _form(site, status="granted"))
    assert response.status_code == 200
    assert response.context["form"].errors["decided_on"] == ["Indiquez la date de la décision (demande « Accordée »)."]
    decision = SocialAidDecision.objects.create(stay=site["stay"], payer=site["cd38"], decision_reference="ASH-7",
                                                valid_from=date(2026, 1, 15), monthly_resources=Decimal("1100.00"))
    response = client.post(edit, _form(site, status="granted", decided_on="2026-04-02", decision=decision.pk))
    assert response.status_code == 302
    application.refresh_from_db()
    assert application.status == "granted" and application.decision == decision
    page = client.get(_url("resident-social-aid", pk=martin.pk)).content.decode()
    assert "Accordée" in page and "ASH-7" in page
    billing = client.get(reverse("billing:stay-billing", kwargs={"alias": "APP-A", "stay_pk": site["stay"].pk}))
    assert _url("resident-social-aid", pk=martin.pk) in billing.content.decode()


def test_scope_refusals(client, site):
    martin, stranger = site["martin"], site["stranger"]
    theirs = SocialAidApplication.objects.create(stay=site["stranger_stay"], payer=site["cd38"],
                                                 filed_on=date(2026, 1, 5))
    client.force_login(site["clerk"])
    # Another section's resident and application: 404 through this section's URL and through theirs.
    assert client.get(_url("resident-social-aid", pk=stranger.pk)).status_code == 404
    assert client.get(_url("resident-social-aid-add", pk=stranger.pk)).status_code == 404
    assert client.post(_url("resident-social-aid-add", pk=stranger.pk), _form(site)).status_code == 404
    assert client.get(_url("resident-social-aid-edit", pk=martin.pk, application_pk=theirs.pk)).status_code == 404
    assert client.get(_url("resident-social-aid", alias="APP-B", pk=stranger.pk)).status_code == 404
    # Another section's stay posted on MARTIN's form: refused by the field.
    response = client.post(_url("resident-social-aid-add", pk=martin.pk),
                           _form(site, stay=site["stranger_stay"].pk))
    assert response.status_code == 200 and "stay" in response.context["form"].errors
    # A reader reads, never writes.
    client.force_login(site["reader"])
    assert client.get(_url("resident-social-aid", pk=martin.pk)).status_code == 200
    assert 'id="application-add"' not in client.get(_url("resident-social-aid", pk=martin.pk)).content.decode()
    assert client.get(_url("resident-social-aid-add", pk=martin.pk)).status_code == 403
    assert client.post(_url("resident-social-aid-add", pk=martin.pk), _form(site)).status_code == 403
    assert SocialAidApplication.objects.count() == 1


def test_admin_lists_applications(client, site):
    application = SocialAidApplication.objects.create(stay=site["stay"], payer=site["cd38"],
                                                      filed_on=date(2026, 1, 5))
    client.force_login(UserFactory(username="root-app", is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:payers_socialaidapplication_changelist")).content.decode()
    assert "05/01/2026" in page or "5 janvier 2026" in page
    assert client.get(reverse("admin:payers_socialaidapplication_change", args=[application.pk])).status_code == 200


# --- Pre-flight warning ----------------------------------------------------------------------------

def test_period_check_warns_for_an_application_pending_more_than_n_months(site, settings):
    section = site["section"]
    assert social_aid_pending_too_long in EXTRA_PERIOD_CHECKS
    durand = resident_in(section, last_name="DURAND")
    bernard = resident_in(section, last_name="BERNARD")
    SocialAidApplication.objects.create(stay=site["stay"], payer=site["cd38"], filed_on=date(2026, 1, 15))
    SocialAidApplication.objects.create(stay=durand.stays.get(), payer=site["cd38"], filed_on=date(2026, 2, 10))
    SocialAidApplication.objects.create(stay=bernard.stays.get(), payer=site["cd38"], filed_on=date(2025, 10, 1),
                                        status="refused", decided_on=date(2026, 1, 20))
    # Another section's old pending application is not this period's.
    SocialAidApplication.objects.create(stay=site["stranger_stay"], payer=site["cd38"], filed_on=date(2025, 9, 1))
    period = BillingPeriod.objects.create(section=section, start=date(2026, 5, 1), end=date(2026, 5, 31),
                                          accounting_date=date(2026, 5, 31), label="Mai 2026")

    def warnings():
        return [c for c in period_checks(period=period) if "demande d'aide sociale" in c.message]

    found = warnings()  # default 4 months: before 31/01/2026
    assert len(found) == 1 and found[0].level == "warning"
    assert found[0].message.startswith(f"{site['martin'].full_name} : demande d'aide sociale déposée le "
                                       "15/01/2026 auprès de CD38 toujours en attente après plus de 4 mois")
    assert found[0].link == _url("resident-social-aid", pk=site["martin"].pk)
    settings.SOCIAL_AID_PENDING_WARNING_MONTHS = 3  # before 28/02/2026: DURAND too
    assert [c.message.split(" :")[0] for c in warnings()] == [site["martin"].full_name, durand.full_name]
