"""Writes on residents, relatives, stays, GIR and absences (business rules live here)."""
from __future__ import annotations

from datetime import date, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError
from django.utils.translation import gettext as _

from core.formats import fr_date

from structures.models import Section


def fr_date_open(day) -> str:
    """A stay or absence bound; an open end is shown as « … »."""
    return fr_date(day, empty="…")

from ..models import Absence, GirAssessment, Relative, Resident, Stay
from ..validators import normalize_nir


def _overlaps(a_start: date, a_end: date | None, b_start: date, b_end: date | None) -> bool:
    return a_start <= (b_end or date.max) and b_start <= (a_end or date.max)


def stay_validate(*, stay: Stay) -> None:
    """Dates in order; no two stays of one resident overlapping in one section."""
    errors = {}
    if stay.end_date and stay.end_date < stay.entry_date:
        errors["end_date"] = _("La date de fin (%(end)s) est antérieure à la date d'entrée (%(entry)s).") % {
            "end": fr_date_open(stay.end_date), "entry": fr_date_open(stay.entry_date)}
    if stay.end_date and not stay.end_reason:
        errors["end_reason"] = _("Indiquez le motif de fin du séjour (départ, transfert ou décès).")
    if stay.end_reason and not stay.end_date:
        errors["end_date"] = _("Un motif de fin est indiqué sans date de fin.")
    if errors:
        raise ValidationError(errors)
    others = Stay.objects.filter(resident_id=stay.resident_id, section_id=stay.section_id).exclude(pk=stay.pk)
    for other in others:
        if _overlaps(stay.entry_date, stay.end_date, other.entry_date, other.end_date):
            raise ValidationError({"entry_date": _(
                "Ce séjour chevauche le séjour du %(start)s au %(end)s dans la section %(alias)s.") % {
                "start": fr_date_open(other.entry_date), "end": fr_date_open(other.end_date), "alias": other.section.alias}})
    if stay.pk:
        outside = stay.absences.filter(first_day__lt=stay.entry_date)
        if stay.end_date:
            outside = outside | stay.absences.filter(last_day__gt=stay.end_date)
        if outside.exists():
            raise ValidationError({"end_date": _("Des absences saisies sortiraient des dates du séjour.")})


def resident_validate(*, resident: Resident) -> None:
    """Rules across residents: the external reference is unique in the association."""
    if resident.external_ref:
        other = Resident.objects.filter(organisation_id=resident.organisation_id,
                                        external_ref=resident.external_ref).exclude(pk=resident.pk).first()
        if other:
            raise ValidationError({"external_ref": _(
                "La référence externe « %(ref)s » est déjà celle de %(name)s.") % {
                "ref": resident.external_ref, "name": other}})


def relative_validate(*, relative: Relative) -> None:
    if relative.receives_invoices:
        other = Relative.objects.filter(resident_id=relative.resident_id, receives_invoices=True).exclude(
            pk=relative.pk).first()
        if other:
            raise ValidationError({"receives_invoices": _(
                "%(name)s est déjà destinataire des factures : un seul proche peut l'être.") % {"name": other}})
    if relative.is_payer:
        other = Relative.objects.filter(resident_id=relative.resident_id, is_payer=True).exclude(
            pk=relative.pk).first()
        if other:
            raise ValidationError({"is_payer": _(
                "%(name)s règle déjà la part du résident : un seul proche peut être payeur.") % {"name": other}})


@transaction.atomic
def resident_create(*, resident: Resident, section: Section, entry_date: date, room: str = "",
                    gir: int | None = None, relatives: list[Relative] | None = None) -> Resident:
    """A new resident with their first stay in ``section`` (and optional GIR and relatives)."""
    resident.organisation = section.establishment.organisation
    resident.domicile_secours = (resident.domicile_secours or section.establishment.departement).upper()
    resident.nir = normalize_nir(resident.nir)
    resident_validate(resident=resident)
    resident.full_clean()
    resident.save()
    stay = Stay(resident=resident, section=section, entry_date=entry_date, room=room)
    stay_validate(stay=stay)
    stay.full_clean()
    stay.save()
    if gir:
        GirAssessment.objects.create(resident=resident, gir=gir, valid_from=entry_date)
    for relative in relatives or []:
        relative.resident = resident
        relative_save(relative=relative)
    return resident


@transaction.atomic
def resident_update(*, resident: Resident) -> Resident:
    resident.nir = normalize_nir(resident.nir)
    resident_validate(resident=resident)
    resident.full_clean()
    resident.save()
    return resident


@transaction.atomic
def relative_save(*, relative: Relative) -> Relative:
    # Lock the resident row so two concurrent "invoice recipient" ticks cannot both pass.
    Resident.objects.select_for_update().filter(pk=relative.resident_id).first()
    relative_validate(relative=relative)
    relative.full_clean()
    relative.save()
    return relative


def relative_delete(*, relative: Relative) -> None:
    """Delete a relative; refused (French ``ValidationError``) while documents still name them as debtor
    (issued invoices are immutable: their debtor cannot disappear)."""
    try:
        with transaction.atomic():
            relative.delete()
    except ProtectedError as exc:
        numbers = sorted({str(getattr(obj, "number", "") or "") for obj in exc.protected_objects} - {""})
        raise ValidationError(
            _("Suppression refusée : %(name)s est le débiteur de %(n)s facture(s)%(numbers)s. Une facture émise ne "
              "change pas de débiteur ; décochez plutôt « destinataire des factures » pour les suivantes.") % {
                "name": relative, "n": len(exc.protected_objects),
                "numbers": (" (" + ", ".join(numbers[:5]) + ("…" if len(numbers) > 5 else "") + ")") if numbers else ""},
            code="protected") from exc


@transaction.atomic
def stay_save(*, stay: Stay) -> Stay:
    Resident.objects.select_for_update().filter(pk=stay.resident_id).first()
    stay_validate(stay=stay)
    stay.full_clean()
    stay.save()
    return stay


@transaction.atomic
def resident_transfer(*, stay: Stay, target_section: Section, transfer_date: date, room: str = "") -> Stay:
    """Close ``stay`` on the eve of ``transfer_date`` and open a stay in ``target_section`` that day.

    The last day billed in the origin section is the day before the transfer, so no day is
    billed twice; the history (both stays, linked) is kept.
    """
    Resident.objects.select_for_update().filter(pk=stay.resident_id).first()
    stay.refresh_from_db()
    if target_section.pk == stay.section_id:
        raise ValidationError({"target_section": _("Choisissez une autre section que la section actuelle.")})
    if transfer_date <= stay.entry_date:
        raise ValidationError({"transfer_date": _(
            "La date de transfert (%(date)s) doit être postérieure à l'entrée dans la section (%(entry)s).") % {
            "date": fr_date_open(transfer_date), "entry": fr_date_open(stay.entry_date)}})
    if stay.end_date and transfer_date > stay.end_date + timedelta(days=1):
        raise ValidationError({"transfer_date": _("Ce séjour est déjà terminé le %(end)s.") % {
            "end": fr_date_open(stay.end_date)}})
    if stay.absences.filter(last_day__gte=transfer_date).exists():
        raise ValidationError({"transfer_date": _(
            "Des absences sont saisies à partir du %(date)s dans la section d'origine : modifiez-les d'abord.") % {
            "date": fr_date_open(transfer_date)}})
    if target_section.establishment.organisation_id != stay.section.establishment.organisation_id:
        raise ValidationError({"target_section": _("La section cible appartient à une autre association.")})
    stay.end_date = transfer_date - timedelta(days=1)
    stay.end_reason = Stay.EndReason.TRANSFER
    stay_save(stay=stay)
    new_stay = Stay(resident=stay.resident, section=target_section, entry_date=transfer_date,
                    room=room, transferred_from=stay)
    return stay_save(stay=new_stay)


@transaction.atomic
def gir_add(*, resident: Resident, gir: int, valid_from: date) -> GirAssessment:
    assessment, _created = GirAssessment.objects.update_or_create(
        resident=resident, valid_from=valid_from, defaults={"gir": gir})
    return assessment


def absence_validate(*, absence: Absence) -> None:
    stay = absence.stay
    if absence.last_day < absence.first_day:
        raise ValidationError({"last_day": _(
            "Le dernier jour d'absence (%(last)s) précède le premier (%(first)s).") % {
            "last": fr_date_open(absence.last_day), "first": fr_date_open(absence.first_day)}})
    if absence.first_day < stay.entry_date or (stay.end_date and absence.last_day > stay.end_date):
        raise ValidationError({"first_day": _(
            "L'absence du %(first)s au %(last)s sort du séjour (du %(entry)s au %(end)s).") % {
            "first": fr_date_open(absence.first_day), "last": fr_date_open(absence.last_day),
            "entry": fr_date_open(stay.entry_date), "end": fr_date_open(stay.end_date)}})
    if absence.reason.establishment_id != stay.section.establishment_id:
        raise ValidationError({"reason": _("Ce motif n'appartient pas à l'établissement du séjour.")})
    clash = Absence.objects.filter(
        stay__resident_id=stay.resident_id, first_day__lte=absence.last_day, last_day__gte=absence.first_day
    ).exclude(pk=absence.pk).first()
    if clash:
        raise ValidationError({"first_day": _("Cette absence chevauche l'absence %(other)s.") % {"other": clash}})


@transaction.atomic
def absence_save(*, absence: Absence) -> Absence:
    Resident.objects.select_for_update().filter(pk=absence.stay.resident_id).first()
    absence_validate(absence=absence)
    absence.full_clean()
    absence.save()
    return absence


@transaction.atomic
def absence_delete(*, absence: Absence) -> None:
    absence.delete()


def resident_note_add(*, resident: Resident, text: str, author=None):
    """A dated internal note on the resident (the thread of the file's *Notes* tab)."""
    from ..models import ResidentNote

    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": _("La note est vide.")})
    return ResidentNote.objects.create(resident=resident, text=text, author=author)
