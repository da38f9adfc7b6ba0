"""factory_boy factories shared by the tests."""
from datetime import date

import factory
from django.contrib.auth import get_user_model

from residents.models import Absence, AbsenceReason, GirAssessment, Relative, Resident, Stay
from structures.models import Establishment, Organisation, Section, SectionAccess


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("demo")


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation

    name = factory.Sequence(lambda n: f"Association {n}")
    smtp_host = "127.0.0.1"
    smtp_port = 1025
    smtp_security = Organisation.SmtpSecurity.NONE


class EstablishmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Establishment

    organisation = factory.SubFactory(OrganisationFactory)
    name = factory.Sequence(lambda n: f"EHPAD {n}")
    code = factory.Sequence(lambda n: f"E{n:03d}")
    departement = "69"
    legal_status = Establishment.LegalStatus.ASSOCIATION


class SectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Section

    establishment = factory.SubFactory(EstablishmentFactory)
    alias = factory.Sequence(lambda n: f"SEC-{n:03d}")
    name = "Hébergement permanent"
    kind = Section.Kind.PERMANENT


class SectionAccessFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SectionAccess

    user = factory.SubFactory(UserFactory)
    section = factory.SubFactory(SectionFactory)
    role = SectionAccess.Role.CLERK


class ResidentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Resident

    organisation = factory.SubFactory(OrganisationFactory)
    civility = "MME"
    last_name = factory.Sequence(lambda n: f"Nom{n}")
    first_name = "Jeanne"
    birth_date = date(1935, 4, 12)


class StayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Stay

    resident = factory.SubFactory(ResidentFactory)
    section = factory.SubFactory(SectionFactory)
    entry_date = date(2026, 1, 1)


class RelativeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Relative

    resident = factory.SubFactory(ResidentFactory)
    last_name = factory.Sequence(lambda n: f"Proche{n}")
    first_name = "Paul"
    relationship = "FILS"


class GirAssessmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GirAssessment

    resident = factory.SubFactory(ResidentFactory)
    gir = 3
    valid_from = date(2026, 1, 1)


class AbsenceReasonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AbsenceReason
        django_get_or_create = ("establishment", "code")

    establishment = factory.SubFactory(EstablishmentFactory)
    code = "H"
    label = "Hospitalisation"
    rule = AbsenceReason.Rule.HOSPITAL


class AbsenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Absence

    stay = factory.SubFactory(StayFactory)
    reason = factory.LazyAttribute(lambda o: AbsenceReasonFactory(establishment=o.stay.section.establishment))
    first_day = date(2026, 3, 2)
    last_day = date(2026, 3, 5)
