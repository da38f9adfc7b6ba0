"""Calendars (layer 1): the days on which sections bill (open / closed / half day)."""
from django.db import models
from django.utils.translation import gettext_lazy as _

from structures.models import Establishment, Section

from . import frozen


class Calendar(models.Model):
    class Mode(models.TextChoices):
        FULL = "full", _("Complet (tous les jours)")
        NO_WEEKENDS = "no_weekends", _("Sauf week-ends")
        NO_HOLIDAYS = "no_holidays", _("Sauf jours fériés")
        WORKING_DAYS = "working_days", _("Jours ouvrables (ni week-ends ni jours fériés)")
        FREE = "free", _("Libre (jours fermés à ouvrir à la main)")

    establishment = models.ForeignKey(Establishment, verbose_name=_("établissement"), on_delete=models.CASCADE,
                                      related_name="calendars")
    code = models.CharField(_("code"), max_length=20, unique=True)
    label = models.CharField(_("libellé"), max_length=120)
    mode = models.CharField(_("mode de génération"), max_length=14, choices=Mode.choices, default=Mode.FULL)
    sections = models.ManyToManyField(Section, verbose_name=_("sections"), related_name="calendars", blank=True)

    class Meta:
        verbose_name = _("calendrier")
        verbose_name_plural = _("calendriers")
        ordering = ["code"]

    def __str__(self):
        return f"{self.code} — {self.label}"


class CalendarDay(frozen.FrozenWhenUsedMixin, models.Model):
    """A day of a calendar; frozen once an issued invoice of one of its sections covers it."""

    FROZEN_FIELDS = ("calendar_id", "day", "state")

    class State(models.TextChoices):
        OPEN = "open", _("Ouvert")
        CLOSED = "closed", _("Fermé")
        HALF = "half", _("Demi-journée")

    calendar = models.ForeignKey(Calendar, verbose_name=_("calendrier"), on_delete=models.CASCADE, related_name="days")
    day = models.DateField(_("jour"))
    state = models.CharField(_("état"), max_length=6, choices=State.choices, default=State.OPEN)
    note = models.CharField(_("note"), max_length=100, blank=True)

    objects = frozen.FrozenWhenUsedQuerySet.as_manager()

    class Meta:
        verbose_name = _("jour de calendrier")
        verbose_name_plural = _("jours de calendrier")
        ordering = ["calendar", "day"]
        constraints = [models.UniqueConstraint(fields=["calendar", "day"], name="unique_calendar_day")]

    def __str__(self):
        return f"{self.calendar.code} {self.day:%d/%m/%Y} {self.get_state_display()}"

    def is_used(self) -> bool:
        return frozen.calendar_day_is_used(calendar_id=self.calendar_id, day=self.day)

    def frozen_message(self) -> str:
        from django.utils.translation import gettext

        return gettext("Le %(day)s du calendrier %(code)s est couvert par des factures émises : il ne peut plus être "
                       "modifié.") % {"day": f"{self.day:%d/%m/%Y}", "code": self.calendar.code}
