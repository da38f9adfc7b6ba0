"""A small billing set-up with the tariffs of domain-research.md's worked examples:
hébergement 65.00 €/day, dependency 22.00 / 14.00 / 6.00 €/day, FJH 20 € then 23 € from 1 March 2026."""
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest

from billing.models import (BillingPeriod, Calendar, DepartementParameter, NationalParameter, Package, PackageItem,
                            Product, StayPackage, Tariff)
from billing.services.calendars import calendar_generate
from payers.models import CoverageRule, Payer, PayerGroup
from residents.models import AbsenceReason, GirAssessment, Stay
from tests.factories import EstablishmentFactory, ResidentFactory, SectionFactory

D = Decimal


@dataclass
class Setup:
    establishment: object
    section: object
    calendar: object
    products: dict
    package: object
    reasons: dict
    payers: dict

    def stay(self, *, entry=date(2026, 1, 1), end=None, end_reason="", gir=2, room_emptied_on=None,
             package=None, birth=date(1935, 1, 1), domicile=""):
        resident = ResidentFactory(organisation=self.establishment.organisation, birth_date=birth,
                                   domicile_secours=domicile)
        stay = Stay.objects.create(resident=resident, section=self.section, entry_date=entry, end_date=end,
                                   end_reason=end_reason, room_emptied_on=room_emptied_on)
        StayPackage.objects.create(stay=stay, package=package or self.package, valid_from=entry)
        if gir:
            GirAssessment.objects.create(resident=resident, gir=gir, valid_from=entry)
        return stay

    def absence(self, stay, code, first, last):
        from residents.models import Absence

        return Absence.objects.create(stay=stay, reason=self.reasons[code], first_day=first, last_day=last)

    def apa(self, stay, payer_code, *, valid_from=None):
        payer = self.payers[payer_code]
        return CoverageRule.objects.create(stay=stay, payer=payer, group=payer.groups.get(code="APA"),
                                           scope=CoverageRule.Scope.DEPENDENCY, mode=CoverageRule.Mode.ABOVE_TALON,
                                           valid_from=valid_from or stay.entry_date)

    def period(self, start, end, label="période"):
        return BillingPeriod.objects.create(section=self.section, start=start, end=end, accounting_date=end,
                                            label=label)

    def product(self, code, label, kind, unit, prices):
        product = Product.objects.create(establishment=self.establishment, code=code, label=label, kind=kind,
                                         unit=unit)
        for valid_from, price in prices:
            Tariff.objects.create(product=product, valid_from=valid_from, price=D(price))
        self.products[code] = product
        return product


@pytest.fixture
def billing_setup(db):
    establishment = EstablishmentFactory(departement="69", code="EXA")
    section = SectionFactory(establishment=establishment, alias="EXA-HP")
    calendar = Calendar.objects.create(establishment=establishment, code="CAL-EXA", label="Exemple", mode="full")
    calendar.sections.add(section)
    calendar_generate(calendar=calendar, years=[2025, 2026])
    for kind, valid_from, amount in [("hospital_daily_charge", date(2018, 1, 1), "20.00"),
                                     ("hospital_daily_charge", date(2026, 3, 1), "23.00"),
                                     ("psychiatric_daily_charge", date(2018, 1, 1), "15.00"),
                                     ("psychiatric_daily_charge", date(2026, 3, 1), "17.00")]:
        NationalParameter.objects.update_or_create(kind=kind, valid_from=valid_from, defaults={"amount": D(amount)})
    DepartementParameter.objects.create(departement="69", valid_from=date(2020, 1, 1), convenience_reduction=None,
                                        convenience_cap_days=35, death_variable_charges=D("13.00"))
    setup = Setup(establishment, section, calendar, {}, None, {}, {})
    heb = setup.product("HEB", "Hébergement", "accommodation", "day", [(date(2025, 1, 1), "65.00")])
    setup.product("DEP12", "Dépendance GIR 1-2", "dependency_12", "day", [(date(2025, 1, 1), "22.00")])
    setup.product("DEP34", "Dépendance GIR 3-4", "dependency_34", "day", [(date(2025, 1, 1), "14.00")])
    setup.product("DEP56", "Dépendance GIR 5-6 (talon)", "dependency_56", "day", [(date(2025, 1, 1), "6.00")])
    setup.package = Package.objects.create(section=section, code="STD", label="Standard", dependency_by_gir=True)
    PackageItem.objects.create(package=setup.package, product=heb)
    for code, label, rule in [("H", "Hospitalisation", "HOSPITAL"), ("S", "Psychiatrie", "HOSPITAL_PSY"),
                              ("C", "Convenance", "CONVENIENCE"), ("P", "Permission", "NONE")]:
        setup.reasons[code] = AbsenceReason.objects.create(establishment=establishment, code=code, label=label,
                                                           rule=rule)
    org = establishment.organisation
    for code, dept, dotation in [("CD69", "69", True), ("CD01", "01", False)]:
        payer = Payer.objects.create(organisation=org, code=code, name=f"Département {dept}", kind="departement",
                                     departement=dept, apa_dotation_globale=dotation)
        PayerGroup.objects.create(payer=payer, code="APA", label="APA")
        PayerGroup.objects.create(payer=payer, code="ASH", label="Aide sociale hébergement")
        setup.payers[code] = payer
    return setup


@pytest.fixture
def april_issued(billing_setup):
    """April 2026 generated and issued, with two APA residents of the CD01 (their share goes to the payer)."""
    from billing.services.generation import period_generate
    from billing.services.issuing import period_issue

    for gir in (1, 3):
        stay = billing_setup.stay(gir=gir, domicile="01")
        billing_setup.apa(stay, "CD01")
    period = billing_setup.period(date(2026, 4, 1), date(2026, 4, 30), label="avril 2026")
    period_generate(period=period)
    period_issue(period=period, issue_date=date(2026, 5, 2))
    return period
