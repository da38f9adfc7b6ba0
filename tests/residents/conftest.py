from datetime import date

import pytest

from tests.factories import AbsenceFactory, RelativeFactory, ResidentFactory, StayFactory


@pytest.fixture
def verger_objects(demo):
    """A resident of Le Verger (VER-HP) with a relative, a stay, an absence and a GIR: real ids to guess."""
    section = demo["sections"]["VER-HP"]
    resident = ResidentFactory(organisation=demo["organisation"], last_name="Vergerin", external_ref="VER-001")
    stay = StayFactory(resident=resident, section=section, entry_date=date(2026, 1, 5), room="12")
    relative = RelativeFactory(resident=resident, receives_invoices=True)
    absence = AbsenceFactory(stay=stay, reason=section.establishment.absence_reasons.get(code="H"))
    return {"section": section, "resident": resident, "stay": stay, "relative": relative, "absence": absence}


@pytest.fixture
def tilleuls_objects(demo):
    """A resident of Les Tilleuls (TIL-HP) with a relative, a stay and an absence."""
    section = demo["sections"]["TIL-HP"]
    resident = ResidentFactory(organisation=demo["organisation"], last_name="Tilleulin", external_ref="TIL-001")
    stay = StayFactory(resident=resident, section=section, entry_date=date(2026, 1, 5), room="104")
    relative = RelativeFactory(resident=resident, receives_invoices=True)
    absence = AbsenceFactory(stay=stay, reason=section.establishment.absence_reasons.get(code="H"))
    return {"section": section, "resident": resident, "stay": stay, "relative": relative, "absence": absence}
