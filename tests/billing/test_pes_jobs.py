"""PES rôles built by the workers (``billing.pes_role`` and ``billing.pes_simulate`` jobs): running a
generation job again — the same message delivered twice, a worker taking over an expired lease,
« Relancer » after a failure or after a success — never numbers a second rôle and gives the same
bytes; the job of a section is followed, downloaded and re-run only by who may (another section's
user: 404; a reader re-running a generation: 403)."""
from datetime import date, timedelta

import pytest
from django.urls import reverse

from billing.models import PesArticleInvoice, PesCounter, PesRole
from billing.services import pes as services
from billing.services import pes_jobs
from core.models import Job
from core.services.jobs import job_claim, job_rerun, job_run
from tests.billing.test_pes import ON, verger  # noqa: F401  (fixture)
from tests.billing.test_pes_views import users  # noqa: F401  (fixture)
from tests.factories import SectionAccessFactory, SectionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_worker(monkeypatch):
    """Jobs stay pending until the test runs them with ``job_run``."""
    from core import tasks

    monkeypatch.setattr(tasks.run_job, "delay", lambda pk: None)


def _generate(verger, user=None):  # noqa: F811
    return pes_jobs.role_generate_start(period=verger["period"], user=user, on=ON)


def test_the_job_stores_the_role_of_the_direct_service(verger, no_worker):  # noqa: F811
    # The same bytes as the service run directly (the command's way) on the same data and date.
    expected = services.role_simulate(period=verger["period"], on=ON).content
    job = job_run(job_id=_generate(verger).pk, func=pes_jobs.pes_role_job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    role = PesRole.objects.get()
    assert (role.id_bord, role.dte_bord_em, job.result["already"]) == (12, ON, False)
    assert bytes(role.content) == expected
    assert services.role_render(role) == bytes(role.content)


def test_a_message_delivered_twice_runs_once(verger, no_worker):  # noqa: F811
    job = _generate(verger)
    job_run(job_id=job.pk, func=pes_jobs.pes_role_job)
    again = job_run(job_id=job.pk, func=pes_jobs.pes_role_job)  # finished: the message is ignored
    assert again.status == Job.Status.SUCCEEDED and PesRole.objects.count() == 1


def test_a_worker_taking_over_gets_the_same_role(verger, no_worker):  # noqa: F811
    """The first worker stored the rôle but lost its lease before recording it: the worker that takes
    the job over finds the rôle of the request and records it; no second number."""
    job = _generate(verger)
    assert job_claim(job_id=job.pk, owner="first")
    first = pes_jobs.pes_role_job(job=job, progress=lambda *a, **k: None)
    Job.objects.filter(pk=job.pk).update(lease_expires_at=job.created_at - timedelta(minutes=1))
    job = job_run(job_id=job.pk, func=pes_jobs.pes_role_job, owner="second")
    assert job.status == Job.Status.SUCCEEDED and job.attempts == 2
    assert job.result["already"] and job.result["role_id"] == first["role_id"]
    assert job.result["message"] == "Rôle n° 12/2026 déjà généré par cette demande : 3 titre(s), 3980.00 €."
    assert PesRole.objects.count() == 1
    assert PesCounter.objects.get(establishment=verger["establishment"], exercice=2026).last_number == 12


def test_rerun_after_success_or_failure_keeps_the_numbering(verger, no_worker):  # noqa: F811
    # A failure (bad postal code) consumes no number; « Relancer » after the fix gets rôle 12, on the
    # request's date, with the bytes of a direct generation.
    verger["martin"].postal_code = "571"
    verger["martin"].save()
    failed = job_run(job_id=_generate(verger).pk, func=pes_jobs.pes_role_job)
    assert failed.status == Job.Status.FAILED
    assert "Martin Paul : le code postal « 571 » n'a pas 5 chiffres" in failed.error
    assert not PesRole.objects.exists() and not PesCounter.objects.filter(last_number__gte=12).exists()
    verger["martin"].postal_code = "57100"
    verger["martin"].save()
    expected = services.role_simulate(period=verger["period"], on=ON).content
    rerun = job_run(job_id=job_rerun(job=failed).pk, func=pes_jobs.pes_role_job)
    role = PesRole.objects.get()
    assert rerun.status == Job.Status.SUCCEEDED and role.id_bord == 12 and bytes(role.content) == expected
    # « Relancer » a succeeded request: the same rôle, nothing numbered.
    twice = job_run(job_id=job_rerun(job=rerun).pk, func=pes_jobs.pes_role_job)
    assert twice.status == Job.Status.SUCCEEDED and twice.result["role_id"] == role.pk and twice.result["already"]
    assert PesRole.objects.count() == 1 and PesArticleInvoice.objects.filter(active=True).count() == 3


def test_a_new_request_after_a_rejection_takes_the_next_number(verger, no_worker):  # noqa: F811
    job_run(job_id=_generate(verger).pk, func=pes_jobs.pes_role_job)
    PesRole.objects.update(status=PesRole.Status.REJECTED)
    PesArticleInvoice.objects.update(active=False)  # what a rejecting PES_ACQUIT does
    second = job_run(job_id=_generate(verger).pk, func=pes_jobs.pes_role_job)
    assert second.result["id_bord"] == 13 and PesRole.objects.count() == 2


def test_refused_at_once_without_settings_or_for_a_private_establishment(verger, no_worker):  # noqa: F811
    from django.core.exceptions import ValidationError

    verger["settings"].delete()
    with pytest.raises(ValidationError, match="Renseignez d'abord les paramètres PES"):
        _generate(verger)
    assert not Job.objects.exists()


def test_a_job_of_another_period_or_section_is_refused(verger, no_worker):  # noqa: F811
    other = SectionFactory(alias="AUT-PUB", establishment__legal_status="public")
    job = _generate(verger)
    Job.objects.filter(pk=job.pk).update(section=other)  # a forged job: its period is not its section's
    job = job_run(job_id=job.pk, func=pes_jobs.pes_role_job)
    assert job.status == Job.Status.FAILED and job.error == "Période introuvable."
    assert not PesRole.objects.exists()


def test_simulation_job_reports_the_checker_and_stores_nothing(verger, no_worker):  # noqa: F811
    verger["settings"].__class__.objects.filter(pk=verger["settings"].pk).update(cod_bud="1")  # bypassing the form
    job = pes_jobs.role_simulate_start(period=verger["period"], on=ON)
    job = job_run(job_id=job.pk, func=pes_jobs.pes_simulate_job)
    assert job.status == Job.Status.SUCCEEDED  # a refused file is a verdict, not a failure
    assert any("CodBud" in e for e in job.result["errors"]) and "refuse le fichier" in job.result["message"]
    assert [a["num_dette"] for a in job.result["articles"]] == ["2026017", "2026018", "2026019"]
    assert "iban" not in str(job.result["articles"]).lower()
    assert not PesRole.objects.exists() and not PesCounter.objects.exists()


def test_following_and_rerunning_need_the_section(client, verger, users, no_worker):  # noqa: F811
    generation = _generate(verger, users["manager"])
    simulation = pes_jobs.role_simulate_start(period=verger["period"], user=users["reader"], on=ON)
    job_run(job_id=simulation.pk, func=pes_jobs.pes_simulate_job)
    urls = [reverse(name, kwargs={"pk": job.pk}) for job in (generation, simulation)
            for name in ("job-detail", "job-progress")] + [reverse("job-download", kwargs={"pk": simulation.pk})]
    # A manager of another public establishment: none of it exists, nor the period's pages.
    other = SectionFactory(alias="AUT-PUB", establishment__legal_status="public")
    stranger = UserFactory(username="stranger")
    SectionAccessFactory(user=stranger, section=other, role="manager")
    client.force_login(stranger)
    assert [client.get(url).status_code for url in urls] == [404] * 5
    assert client.post(reverse("job-rerun", kwargs={"pk": generation.pk})).status_code == 404
    period_pk = verger["period"].pk
    for name in ("pes-simulate", "pes-generate"):
        assert client.post(reverse(f"billing:{name}", kwargs={"alias": "AUT-PUB", "period_pk": period_pk})
                           ).status_code == 404
        assert client.post(reverse(f"billing:{name}", kwargs={"alias": "VER-HP", "period_pk": period_pk})
                           ).status_code == 404
    assert Job.objects.count() == 2
    # A reader of the section follows both and downloads the simulation, re-runs the simulation,
    # but not the generation (managers only).
    client.force_login(users["reader"])
    assert [client.get(url).status_code for url in urls] == [200] * 5
    assert client.post(reverse("job-rerun", kwargs={"pk": generation.pk})).status_code == 403
    client.force_login(users["clerk"])
    assert client.post(reverse("job-rerun", kwargs={"pk": generation.pk})).status_code == 403
    client.force_login(users["reader"])
    assert client.post(reverse("job-rerun", kwargs={"pk": simulation.pk})).status_code == 302
    assert Job.objects.filter(kind=services.SIMULATE_JOB_KIND).count() == 2
    assert not Job.objects.filter(kind=services.GENERATE_JOB_KIND).exclude(pk=generation.pk).exists()
    assert date.fromisoformat(generation.params["on"]) == ON
