"""Billing part of the demo association: parameters, products and tariffs, packages, calendars,
payers, and packages / APA rules for the demo stays (demo-data.md). Idempotent."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from billing.models import (Calendar, DepartementParameter, NationalParameter, Package, PackageItem, Product,
                            StayPackage, Tariff)
from billing.services.calendars import calendar_generate
from core.money import round_money
from payers.models import CoverageRule, Payer, PayerGroup
from residents.models import Stay

D = Decimal

NATIONAL = [
    ("hospital_daily_charge", date(2018, 1, 1), D("20.00"), "Arrêté du 21/12/2017"),
    ("hospital_daily_charge", date(2026, 3, 1), D("23.00"), "JO du 28/02/2026"),
    ("psychiatric_daily_charge", date(2018, 1, 1), D("15.00"), "Arrêté du 21/12/2017"),
    ("psychiatric_daily_charge", date(2026, 3, 1), D("17.00"), "JO du 28/02/2026"),
    ("pocket_money_minimum", date(2024, 1, 1), D("121.00"), "1 % de l'ASPA annuelle (CASF R231-6)"),
    ("pocket_money_minimum", date(2025, 1, 1), D("124.00"), "1 % de l'ASPA annuelle (CASF R231-6)"),
    ("pocket_money_minimum", date(2026, 1, 1), D("125.00"), "1 % de l'ASPA annuelle (CASF R231-6)"),
]

DEPARTEMENTS = [
    # departement, convenience reduction (None = FJH of the day), cap, talon day 1, charges after death
    ("69", None, 35, False, D("13.00")),
    ("57", D("18.00"), 30, False, D("0.00")),
    ("01", None, 35, False, D("0.00")),
]

# code, label, kind, unit, {establishment code: [(valid_from, price)]}
PRODUCTS = [
    ("HEB", "Hébergement", "accommodation", "day",
     {"TIL": [(date(2025, 1, 1), "68.20"), (date(2026, 1, 1), "70.45")],
      "VER": [(date(2025, 1, 1), "60.80"), (date(2026, 1, 1), "61.90")]}),
    ("HEB60", "Hébergement moins de 60 ans", "accommodation", "day", {"TIL": [(date(2026, 1, 1), "92.30")]}),
    ("HT", "Hébergement temporaire", "temporary", "day", {"TIL": [(date(2026, 1, 1), "75.00")]}),
    ("AJ", "Accueil de jour", "day_care", "half_day", {"VER": [(date(2026, 1, 1), "32.00")]}),
    ("DEP12", "Dépendance GIR 1-2", "dependency_12", "day",
     {"TIL": [(date(2026, 1, 1), "23.10")], "VER": [(date(2026, 1, 1), "21.80")]}),
    ("DEP34", "Dépendance GIR 3-4", "dependency_34", "day",
     {"TIL": [(date(2026, 1, 1), "14.66")], "VER": [(date(2026, 1, 1), "13.84")]}),
    ("DEP56", "Dépendance GIR 5-6 (talon)", "dependency_56", "day",
     {"TIL": [(date(2026, 1, 1), "6.22")], "VER": [(date(2026, 1, 1), "5.87")]}),
    ("TV", "Location téléviseur", "other", "month",
     {"TIL": [(date(2025, 1, 1), "15.00")], "VER": [(date(2025, 1, 1), "15.00")]}),
    ("LINGE", "Entretien du linge personnel", "other", "month", {"TIL": [(date(2025, 1, 1), "25.00")]}),
]

PACKAGES = [
    ("TIL-HP", "STD", "Hébergement + dépendance", True, ["HEB"]),
    ("TIL-HP", "STD-TV", "Hébergement + dépendance + téléviseur", True, ["HEB", "TV"]),
    ("TIL-HP", "STD-TVL", "Hébergement + dépendance + téléviseur + linge", True, ["HEB", "TV", "LINGE"]),
    ("TIL-HP", "M60", "Hébergement moins de 60 ans", False, ["HEB60"]),
    ("TIL-HT", "HT", "Hébergement temporaire + dépendance", True, ["HT"]),
    ("VER-HP", "STD", "Hébergement + dépendance", True, ["HEB"]),
    ("VER-HP", "STD-TV", "Hébergement + dépendance + téléviseur", True, ["HEB", "TV"]),
    ("VER-AJ", "AJ", "Accueil de jour", False, ["AJ"]),
]

CALENDARS = [
    ("TIL", "CAL-TIL", "Les Tilleuls — tous les jours", "full", ["TIL-HP", "TIL-HT"]),
    ("VER", "CAL-VER", "Le Verger — tous les jours", "full", ["VER-HP"]),
    ("VER", "CAL-VER-AJ", "Le Verger — accueil de jour (jours ouvrables)", "working_days", ["VER-AJ"]),
]

PAYERS = [
    ("CD69", "Département du Rhône", "departement", "69", True, [("ASH", "Aide sociale hébergement"), ("APA", "APA")]),
    ("CD57", "Département de la Moselle", "departement", "57", True, [("ASH", "Aide sociale hébergement"),
                                                                       ("APA", "APA")]),
    ("CD01", "Département de l'Ain", "departement", "01", False, [("APA", "APA")]),
    ("CARSAT", "CARSAT Rhône-Alpes", "pension_fund", "", False, []),
    ("MUTSAN", "Mutuelle Santé Plus", "mutual", "", False, []),
]
# Postal address and customer account of each payer (every debtor needs an address on its invoices).
PAYER_ADDRESSES = {
    "CD69": ("Hôtel du Département, 29-31 cours de la Liberté", "69003", "Lyon", "4112CD69"),
    "CD57": ("Hôtel du Département, 1 rue du Pont Moreau", "57000", "Metz", "4112CD57"),
    "CD01": ("Hôtel du Département, 45 avenue Alsace-Lorraine", "01000", "Bourg-en-Bresse", "4112CD01"),
    "CARSAT": ("35 rue Maurice Flandin", "69003", "Lyon", "4113CARS"),
    "MUTSAN": ("10 rue de la Santé", "69007", "Lyon", "4114MUTS"),
}
# Payers that receive their invoices through Chorus Pro (Factur-X): SIRET (fictitious, Luhn-valid),
# code service, numéro d'engagement. The Ain receives Les Tilleuls' invoices of individual APA.
CHORUS_PRO = {"CD01": ("22010000200017", "DGAS-APA", "EJ-2026-0107")}
# Revenue account of each product code.
PRODUCT_ACCOUNTS = {"HEB": "706110", "HEB60": "706110", "LINGE": "708800", "DEP12": "706120", "DEP34": "706120", "DEP56": "706120", "HT": "706130",
                    "AJ": "706140", "TV": "708800"}

CALENDAR_YEARS = [2025, 2026, 2027]


def demo_billing_seed(*, organisation, establishments: dict, sections: dict) -> None:
    for kind, valid_from, amount, source in NATIONAL:
        NationalParameter.objects.get_or_create(kind=kind, valid_from=valid_from,
                                                defaults={"amount": amount, "source": source})
    for dept, reduction, cap, talon, charges in DEPARTEMENTS:
        DepartementParameter.objects.get_or_create(
            departement=dept, valid_from=date(2025, 1, 1),
            defaults={"convenience_reduction": reduction, "convenience_cap_days": cap, "talon_on_first_day": talon,
                      "death_variable_charges": charges, "source": "Démonstration (RDAS fictif)"})
    products = {}
    for code, label, kind, unit, prices in PRODUCTS:
        for est_code, rows in prices.items():
            product, _ = Product.objects.get_or_create(
                establishment=establishments[est_code], code=code,
                defaults={"label": label, "kind": kind, "unit": unit,
                          "vat_rate": D("5.5") if kind != "other" else D("20")})
            if not product.accounting_account and PRODUCT_ACCOUNTS.get(code):
                product.accounting_account = PRODUCT_ACCOUNTS[code]
                product.save(update_fields=["accounting_account"])
            products[(est_code, code)] = product
            if kind.startswith("dependency"):
                # 2025 dependency tariffs: 2026 minus 2 %, rounded to the cent.
                rows = [(date(2025, 1, 1), str(round_money(D(rows[0][1]) * D("0.98"))))] + rows
            for valid_from, price in rows:
                Tariff.objects.get_or_create(product=product, valid_from=valid_from,
                                             defaults={"price": D(price), "act_reference": "Démonstration"})
    for alias, code, label, by_gir, codes in PACKAGES:
        section = sections[alias]
        package, _ = Package.objects.get_or_create(section=section, code=code,
                                                   defaults={"label": label, "dependency_by_gir": by_gir})
        for product_code in codes:
            PackageItem.objects.get_or_create(package=package,
                                              product=products[(section.establishment.code, product_code)])
    for est_code, code, label, mode, aliases in CALENDARS:
        calendar, created = Calendar.objects.get_or_create(
            code=code, defaults={"establishment": establishments[est_code], "label": label, "mode": mode})
        calendar.sections.add(*[sections[a] for a in aliases])
        if created or not calendar.days.exists():
            calendar_generate(calendar=calendar, years=CALENDAR_YEARS)
    for code, name, kind, dept, dotation, groups in PAYERS:
        address, postal_code, city, account = PAYER_ADDRESSES[code]
        payer, _ = Payer.objects.get_or_create(organisation=organisation, code=code, defaults={
            "name": name, "kind": kind, "departement": dept, "apa_dotation_globale": dotation,
            "email": f"facturation@{code.lower()}.example",
            # CD01 (APA of residents from the Ain) wants one statement per beneficiary; the others one for all
            "statement_mode": "individual" if code == "CD01" else "global"})
        if not payer.address_lines or not payer.accounting_account:  # demo databases seeded before
            payer.address, payer.postal_code, payer.city = payer.address or address, payer.postal_code or postal_code, \
                payer.city or city
            payer.accounting_account = payer.accounting_account or account
            payer.save()
        if code in CHORUS_PRO and not payer.chorus_pro:  # set once: a user may change it afterwards
            payer.siret, payer.chorus_service_code, payer.chorus_engagement_number = CHORUS_PRO[code]
            payer.chorus_pro = True
            payer.save(update_fields=["siret", "chorus_service_code", "chorus_engagement_number", "chorus_pro"])
        for group_code, group_label in groups:
            PayerGroup.objects.get_or_create(payer=payer, code=group_code, defaults={"label": group_label})


def demo_billing_for_stays(*, organisation) -> int:
    """Give every demo stay without a package its section's standard package and, for GIR 1-4
    residents, the APA rule (own département in dotation globale; every 9th from the Ain)."""
    packages = {(p.section_id, p.code): p for p in Package.objects.filter(section__establishment__organisation=organisation)}
    apa = {g.payer.code: g for g in PayerGroup.objects.filter(code="APA", payer__organisation=organisation)
           .select_related("payer")}
    done = 0
    stays = (Stay.objects.filter(resident__organisation=organisation, resident__external_ref__startswith="DEMO-",
                                 package_assignments__isnull=True)
             .select_related("section__establishment", "resident").prefetch_related("resident__gir_assessments"))
    for stay in stays:
        n = int(stay.resident.external_ref.split("-")[1])
        alias = stay.section.alias
        code = {"TIL-HP": ["STD", "STD-TV", "STD-TVL"][n % 3], "TIL-HT": "HT", "VER-HP": ["STD", "STD-TV"][n % 2],
                "VER-AJ": "AJ"}.get(alias)
        package = packages.get((stay.section_id, code))
        if package is None:
            continue
        StayPackage.objects.create(stay=stay, package=package, valid_from=stay.entry_date)
        girs = [g.gir for g in stay.resident.gir_assessments.all()]
        if package.dependency_by_gir and girs and girs[0] <= 4:
            own = "CD69" if stay.section.establishment.departement == "69" else "CD57"
            group = apa["CD01"] if n % 9 == 0 else apa[own]
            CoverageRule.objects.create(stay=stay, payer=group.payer, group=group, scope=CoverageRule.Scope.DEPENDENCY,
                                        mode=CoverageRule.Mode.ABOVE_TALON, valid_from=stay.entry_date, priority=10,
                                        decision_reference=f"APA-{n:04d}")
        done += 1
    return done


def demo_pes_settings(*, establishments: dict) -> None:
    """PES V2 ORMC settings of the public establishments (Le Verger): the demo generates its rôles."""
    from billing.models import PesSettings
    from billing.models.pes import DEFAULT_PRODUCT_CODES, DEFAULT_TIERS_CODES

    for establishment in establishments.values():
        if establishment.legal_status != "public":
            continue
        PesSettings.objects.get_or_create(establishment=establishment, defaults={
            "id_post": "057011", "id_coll": establishment.siret, "fin_jur": "570000042", "cod_col": "123",
            "cod_bud": "01", "libelle_col_bud": establishment.name[:38], "product_codes": DEFAULT_PRODUCT_CODES,
            "tiers_codes": DEFAULT_TIERS_CODES})
