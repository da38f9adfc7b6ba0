"""PES rôles built by the workers (``core.Job``): « Générer le flux » and « Simuler » of a period.

* ``role_generate_start`` / ``pes_role_job`` — the job numbers, checks and stores the rôle
  (``pes.role_generate``). Its parameters carry the date of the request and a request key: a job run
  again (redelivered message, « Relancer ») gets the rôle that key already produced — the same
  number, the same bytes — and never numbers a second one.
* ``role_simulate_start`` / ``pes_simulate_job`` — the job builds the rôle without storing it or
  consuming a number; the simulated file goes to ``exports/<job id>/`` (the job's download) and the
  titres, the checker's verdict and the warnings to the job's result, shown by the period's page.

A period has at most one such job of each kind pending or running: asking again shows that one.
The management command ``export_pes`` calls the services directly.
"""
from __future__ import annotations

import uuid
from datetime import date

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from django.utils.translation import gettext as _

from core import pes as pes_file

from ..models import BillingPeriod
from . import pes
from .pes import GENERATE_JOB_KIND, SIMULATE_JOB_KIND


def period_job(period, kind: str, *, active: bool = False):
    """The latest job of ``kind`` for ``period`` (only a pending or running one with ``active``)."""
    from core.models import Job

    jobs = Job.objects.filter(section=period.section, kind=kind, params__period_id=period.pk)
    if active:
        jobs = jobs.filter(status__in=[Job.Status.PENDING, Job.Status.RUNNING])
    return jobs.order_by("-created_at", "-pk").first()


def _start(*, period, kind: str, label: str, user, on: date | None, **params):
    from core.services.jobs import job_create, job_enqueue
    from core.tasks import run_job

    pes._settings_or_error(period.section.establishment)  # refused at once, not in the worker
    running = period_job(period, kind, active=True)
    if running is not None:
        return running
    job = job_create(kind=kind, label=label, user=user, section=period.section,
                     params={"period_id": period.pk, "on": (on or timezone.localdate()).isoformat(), **params})
    return job_enqueue(job=job, task=run_job)


def role_generate_start(*, period, user=None, on: date | None = None):
    """« Générer le flux » as a job (a new request key; the period's running one if there is one)."""
    return _start(period=period, kind=GENERATE_JOB_KIND, user=user, on=on, request=uuid.uuid4().hex,
                  label=_("Rôle PES — %(alias)s %(label)s") % {"alias": period.section.alias, "label": period.label})


def role_simulate_start(*, period, user=None, on: date | None = None):
    """« Simuler » as a job (the period's running simulation if there is one)."""
    return _start(period=period, kind=SIMULATE_JOB_KIND, user=user, on=on,
                  label=_("Simulation du rôle PES — %(alias)s %(label)s") % {
                      "alias": period.section.alias, "label": period.label})


def _job_period(job) -> tuple[BillingPeriod, date]:
    from core.services.jobs import JobError

    params = job.params or {}
    period = (BillingPeriod.objects.select_related("section__establishment")
              .filter(pk=params.get("period_id"), section=job.section).first())
    if period is None or job.section is None:
        raise JobError(_("Période introuvable."))
    return period, date.fromisoformat(params["on"]) if params.get("on") else timezone.localdate()


def pes_role_job(*, job, progress) -> dict:
    """Job runner "billing.pes_role": params {"period_id", "on", "request"}. The rôle is built and
    stored in one transaction (progress is told before and after it, never inside)."""
    from core.services.jobs import JobError

    period, on = _job_period(job)
    progress(0, 1, _("Construction, contrôle et enregistrement du rôle"))
    try:
        role = pes.role_generate(period=period, user=job.created_by, on=on,
                                 request_key=(job.params or {}).get("request", ""))
    except pes_file.PesError as exc:
        raise JobError(_("Fichier refusé par le contrôle PES : ") + " ; ".join(exc.messages)) from exc
    except ValidationError as exc:
        raise JobError(" ".join(exc.messages)) from exc
    already = bool(getattr(role, "already_generated", False))
    values = {"num": role.id_bord, "exercice": role.exercice, "count": role.pieces_count, "total": role.total}
    message = (_("Rôle n° %(num)s/%(exercice)s déjà généré par cette demande : %(count)s titre(s), %(total)s €.")
               if already else _("Rôle n° %(num)s/%(exercice)s généré : %(count)s titre(s), %(total)s €.")) % values
    progress(1, 1)
    return {"role_id": role.pk, "id_bord": role.id_bord, "exercice": role.exercice, "nom_fic": role.nom_fic,
            "count": role.pieces_count, "total": str(role.total), "already": already, "message": message}


def _article_summary(article: dict) -> dict:
    """What the page shows of a simulated titre (no IBAN kept in the job's result)."""
    sepa = article["sepa"]
    return {"id_pce": article["id_pce"], "nat_pce": article["nat_pce"], "numero_facture": article["numero_facture"],
            "num_dette": article["num_dette"], "cle1": article["cle1"], "cle2": article["cle2"],
            "amount": article["amount"],
            "tiers": {k: article["tiers"].get(k, "") for k in ("civilite", "nom", "prenom", "adr2", "cp", "ville")},
            "lines": [{k: line[k] for k in ("cod_prod_loc", "nature", "mt_ht")} for line in article["lines"]],
            "sepa": {"rum": sepa["rum"], "sequence": sepa["sequence"]} if sepa else None}


def pes_simulate_job(*, job, progress) -> dict:
    """Job runner "billing.pes_simulate": params {"period_id", "on"}. Nothing is stored but the
    simulated file (``result["file"]``, downloaded from the job) and the result shown by the page."""
    from core.services.jobs import JobError

    period, on = _job_period(job)
    try:
        draft = pes.role_simulate(period=period, on=on, progress=progress)
    except ValidationError as exc:
        raise JobError(" ".join(exc.messages)) from exc
    nom_fic = draft.data["envelope"]["nom_fic"]
    name = default_storage.save(f"exports/{job.pk}/SIMULATION_{nom_fic}", ContentFile(draft.content))
    verdict = (_("le contrôle PES refuse le fichier (%(n)s anomalie(s)).") % {"n": len(draft.errors)}
               if draft.errors else _("le fichier respecte les règles du PES."))
    return {"file": name, "nom_fic": nom_fic, "id_bord": draft.data["bordereau"]["id_bord"],
            "count": len(draft.articles), "total": str(draft.total), "errors": draft.errors,
            "warnings": draft.warnings, "articles": [_article_summary(a) for a in draft.articles],
            "message": _("Rôle n° %(num)s (provisoire) : %(count)s titre(s), %(total)s € ; %(verdict)s") % {
                "num": draft.data["bordereau"]["id_bord"], "count": len(draft.articles), "total": draft.total,
                "verdict": verdict}}
