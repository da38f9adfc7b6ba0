"""The demo association « Les Quatre Saisons » (../shared/docs/demo-data.md), built idempotently.

Running it again changes nothing that exists; ``residents=N`` tops the demo residents up to N.
Residents are generated deterministically (same names, dates and absences on every machine).
"""
from __future__ import annotations

import random
from datetime import date, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction

from residents.models import Absence, AbsenceReason, GirAssessment, Relative, Resident, Stay
from structures.models import Establishment, Organisation, Section, SectionAccess

from .imports_seed import demo_absence_mappings

ORGANISATION = {"name": "Les Quatre Saisons", "siret": "78467169500087", "address": "12 rue des Saisons",
                "postal_code": "69003", "city": "Lyon", "email": "contact@quatre-saisons.example",
                "smtp_host": "127.0.0.1", "smtp_port": 1025, "smtp_security": "none",
                "mail_delay_seconds": 2, "mail_pause_every": 10, "mail_pause_seconds": 10}

ESTABLISHMENTS = [
    {"code": "TIL", "name": "EHPAD Les Tilleuls", "city": "Lyon", "postal_code": "69008",
     "address": "4 allée des Tilleuls", "departement": "69", "legal_status": "association",
     "finess": "690000018", "siret": "78467169500111", "creditor_id": "FR72ZZZ123456",
     "iban": "FR7630006000011234567890189", "bic": "AGRIFRPPXXX",
     "sender_name": "EHPAD Les Tilleuls — facturation", "sender_email": "facturation@tilleuls.example",
     "sections": [("TIL-HP", "Hébergement permanent", "permanent"),
                  ("TIL-HT", "Hébergement temporaire", "temporary")]},
    {"code": "VER", "name": "EHPAD Le Verger", "city": "Metz", "postal_code": "57000",
     "address": "18 rue du Verger", "departement": "57", "legal_status": "public",
     "finess": "570000026", "siret": "26570120100005", "creditor_id": "FR19ZZZ654321",
     "iban": "FR7610107001011234567890129", "bic": "BREDFRPPXXX",
     "sender_name": "EHPAD Le Verger — facturation", "sender_email": "facturation@verger.example",
     "sections": [("VER-HP", "Hébergement permanent", "permanent"),
                  ("VER-AJ", "Accueil de jour", "day_care")]},
]

ABSENCE_REASONS = [("H", "Hospitalisation", "HOSPITAL"), ("S", "Hospitalisation psychiatrique", "HOSPITAL_PSY"),
                   ("C", "Convenance personnelle", "CONVENIENCE"), ("P", "Permission de sortie", "NONE")]

USERS = [
    # login, password, superuser, {alias: role}
    ("admin", "admin", True, {}),
    ("tilleuls", "demo", False, {"TIL-HP": "clerk", "TIL-HT": "clerk"}),
    ("responsable", "demo", False, {"TIL-HP": "manager", "TIL-HT": "manager"}),
    ("verger", "demo", False, {"VER-HP": "clerk", "VER-AJ": "clerk"}),
    ("direction", "demo", False, {"TIL-HP": "reader", "TIL-HT": "reader", "VER-HP": "reader", "VER-AJ": "reader"}),
]

LAST_NAMES = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
              "Simon", "Laurent", "Lefèbvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier",
              "Morel", "Girard", "André", "Lefèvre", "Mercier", "Dupont", "Lambert", "Bonnet", "François", "Martinez",
              "Müller", "Schmitt", "Weber", "Klein", "Meyer", "d'Arçy", "Le Goff", "Perrin", "Chevalier", "Gauthier"]
WOMEN = ["Jeanne", "Marie", "Simone", "Yvette", "Odette", "Germaine", "Paulette", "Suzanne", "Hélène", "Éliane",
         "Madeleine", "Colette", "Renée", "Lucienne", "Thérèse"]
MEN = ["Jean", "Pierre", "André", "Marcel", "René", "Louis", "Roger", "Henri", "Gérard", "Raymond", "Émile",
       "Lucien", "Maurice", "Georges", "Joseph"]
STREETS = ["rue Garibaldi", "avenue Félix Faure", "rue Paul Bert", "cours Gambetta", "rue Duguesclin"]
RELATIONSHIPS = ["FILLE", "FILS", "NEVEU", "NIÈCE", "CONJOINT"]

DEMO_PASSWORDS_NOTE = "admin / admin, tilleuls / demo, responsable / demo, verger / demo, direction / demo"


def _relationship_for(civility: str, drawn: str) -> str:
    masculine = {"FILLE": "FILS", "NIÈCE": "NEVEU"}
    feminine = {v: k for k, v in masculine.items()}
    return (masculine if civility == "M" else feminine).get(drawn, drawn)


def nir_for(*, female: bool, birth: date, serial: int) -> str:
    """A valid (fictional) NIR: sex, year, month, département 69, commune 123, order, key."""
    body = f"{2 if female else 1}{birth.year % 100:02d}{birth.month:02d}69123{serial % 1000:03d}"
    key = 97 - int(body) % 97
    return f"{body}{key:02d}"


@transaction.atomic
def demo_seed(*, residents: int = 60, users: bool = True) -> dict:
    organisation, _ = Organisation.objects.get_or_create(name=ORGANISATION["name"], defaults=ORGANISATION)
    sections: dict[str, Section] = {}
    establishments: dict[str, Establishment] = {}
    for spec in ESTABLISHMENTS:
        spec = dict(spec)
        section_specs = spec.pop("sections")
        establishment, _ = Establishment.objects.get_or_create(
            code=spec["code"], defaults={**spec, "organisation": organisation})
        establishments[establishment.code] = establishment
        for alias, name, kind in section_specs:
            sections[alias], _ = Section.objects.get_or_create(
                alias=alias, defaults={"establishment": establishment, "name": name, "kind": kind})
        for code, label, rule in ABSENCE_REASONS:
            AbsenceReason.objects.get_or_create(establishment=establishment, code=code,
                                                defaults={"label": label, "rule": rule})
    created_users = {}
    if users:
        User = get_user_model()
        for login, password, superuser, grants in USERS:
            user = User.objects.filter(username=login).first()
            if user is None:
                user = User(username=login, is_superuser=superuser, is_staff=superuser)
                user.set_password(password)
                user.save()
            for alias, role in grants.items():
                SectionAccess.objects.get_or_create(user=user, section=sections[alias], defaults={"role": role})
            created_users[login] = user
    from .billing_seed import demo_billing_for_stays, demo_billing_seed, demo_pes_settings

    demo_billing_seed(organisation=organisation, establishments=establishments, sections=sections)
    demo_pes_settings(establishments=establishments)
    demo_absence_mappings(establishments=establishments)  # correspondence table C→1, H→2, P→3, S→4
    made = demo_residents(organisation=organisation, sections=sections, count=residents)
    from .sepa_seed import demo_mandates

    demo_mandates(organisation=organisation)  # SEPA mandates of the residents paying by direct debit
    demo_billing_for_stays(organisation=organisation)
    return {"organisation": organisation, "establishments": establishments, "sections": sections,
            "users": created_users, "residents_created": made}


def demo_residents(*, organisation: Organisation, sections: dict[str, Section], count: int) -> int:
    """Top the demo residents (external refs DEMO-0001…) up to ``count``; returns how many were made."""
    existing = set(Resident.objects.filter(organisation=organisation, external_ref__startswith="DEMO-")
                   .values_list("external_ref", flat=True))
    aliases = ["TIL-HP", "TIL-HP", "TIL-HP", "VER-HP", "VER-HP", "TIL-HT", "VER-AJ"]
    reasons = {(r.establishment_id, r.code): r for r in AbsenceReason.objects.all()}
    made = 0
    for n in range(1, count + 1):
        ref = f"DEMO-{n:04d}"
        if ref in existing:
            continue
        rng = random.Random(n)
        female = rng.random() < 0.7
        birth = date(rng.randint(1928, 1948), rng.randint(1, 12), rng.randint(1, 28))
        section = sections[aliases[n % len(aliases)]]
        last_name = LAST_NAMES[n % len(LAST_NAMES)]
        first_name = rng.choice(WOMEN if female else MEN)
        resident = Resident.objects.create(
            organisation=organisation, civility="MME" if female else "M", last_name=last_name,
            first_name=first_name, birth_date=birth, birth_place=rng.choice(["Lyon", "Metz", "Villeurbanne", "Nancy"]),
            nir=nir_for(female=female, birth=birth, serial=n), external_ref=ref,
            email=f"{first_name.lower()}.{n}@residents.example" if n % 4 == 0 else "",
            payment_mode=rng.choice(["cheque", "transfer", "direct_debit", "direct_debit"]),
            address=f"{rng.randint(1, 90)} rue de la République", postal_code="69002", city="Lyon",
        )
        entry = date(2025, 1, 1) + timedelta(days=rng.randint(0, 540))
        end_date = end_reason = None
        if section.kind == Section.Kind.TEMPORARY:
            end_date, end_reason = entry + timedelta(days=rng.randint(10, 60)), Stay.EndReason.DEPARTURE
        stay = Stay.objects.create(resident=resident, section=section, entry_date=entry, end_date=end_date,
                                   end_reason=end_reason or "", room=f"{rng.randint(1, 3)}{rng.randint(1, 40):02d}",
                                   attendance_weekdays=["0,3", "1,4", "2"][n % 3]
                                   if section.kind == Section.Kind.DAY_CARE else "")
        GirAssessment.objects.create(resident=resident, gir=rng.choice([1, 2, 2, 3, 3, 4, 4, 5, 6]), valid_from=entry)
        # Same random draws as before (the demo data stay the same), the first name matching the civility.
        civility, drawn = rng.choice(["M", "MME"]), rng.choice(WOMEN + MEN)
        names = WOMEN if civility == "MME" else MEN
        relative_first_name = drawn if drawn in names else names[(WOMEN + MEN).index(drawn) % len(names)]
        relative = Relative.objects.create(
            resident=resident, civility=civility, last_name=last_name,
            first_name=relative_first_name, relationship=_relationship_for(civility, rng.choice(RELATIONSHIPS)),
            email=f"proche.{n}@familles.example", phone=f"06 {rng.randint(10, 99)} {rng.randint(10, 99)} "
                                                       f"{rng.randint(10, 99)} {rng.randint(10, 99)}",
            receives_invoices=True, is_payer=n % 3 == 0, is_guardian=n % 10 == 0,
            # A separate generator: the other demo values stay what they were.
            address=f"{random.Random(f'relative-{n}').randint(1, 120)} {random.Random(f'street-{n}').choice(STREETS)}",
            postal_code="69003", city="Lyon",
        )
        if n % 10 == 0:  # ~10 % of residents have an absence crossing two months
            start = date(2026, 10, 29)
            if stay.is_open_on(start) and stay.is_open_on(start + timedelta(days=12)):
                Absence.objects.create(stay=stay, reason=reasons[(section.establishment_id, "H")], first_day=start,
                                       last_day=start + timedelta(days=12), comment="Hospitalisation (démo)")
        del relative
        made += 1
    return made
