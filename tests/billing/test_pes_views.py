"""*Rôles PES (Hélios)* screens: reachable from the accounting and period pages of a public
establishment; readers see and simulate (nothing stored), managers save the settings, generate the
flow and import the acknowledgement; a *lecture* or *facturation* user posting: 403; another
establishment's period or rôle, or a private establishment: 404."""
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from billing.models import PesCounter, PesRole, PesSettings
from billing.services import pes as services
from billing.services import pes_jobs
from billing.services.periods import period_create
from core import pes
from core.models import Job
from tests.billing.test_pes import _acquit, verger  # noqa: F401  (fixture)
from tests.factories import SectionAccessFactory, SectionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def users(verger):  # noqa: F811
    found = {}
    for role in ("reader", "clerk", "manager"):
        found[role] = UserFactory(username=f"pes-{role}")
        SectionAccessFactory(user=found[role], section=verger["section"], role=role)
    return found


def _url(name, alias="VER-HP", **kwargs):
    return reverse(f"billing:{name}", kwargs={"alias": alias, **kwargs})


def test_links_from_accounting_and_period_pages(client, verger, users):  # noqa: F811
    client.force_login(users["reader"])
    page = client.get(_url("accounting")).content.decode()
    assert _url("pes") in page
    page = client.get(_url("period-detail", period_pk=verger["period"].pk)).content.decode()
    assert _url("pes-period", period_pk=verger["period"].pk) in page
    page = client.get(_url("pes")).content.decode()
    assert "Paramètres PES" in page and _url("pes-period", period_pk=verger["period"].pk) in page


@pytest.fixture
def eager(django_capture_on_commit_callbacks):
    """Jobs started inside the block run at once, as a worker would (Celery eager)."""
    from contextlib import contextmanager

    from config.celery import app

    @contextmanager
    def run():
        app.conf.task_always_eager = True
        try:
            with django_capture_on_commit_callbacks(execute=True):
                yield
        finally:
            app.conf.task_always_eager = False
    return run


def test_reader_simulates_without_storing(client, verger, users, eager):  # noqa: F811
    client.force_login(users["reader"])
    period_url = _url("pes-period", period_pk=verger["period"].pk)
    with eager():
        response = client.post(_url("pes-simulate", period_pk=verger["period"].pk))
    assert response.status_code == 302 and response.url == period_url
    job = Job.objects.get(kind=services.SIMULATE_JOB_KIND)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.section == verger["section"] and job.created_by == users["reader"]
    assert job.progress_current == job.progress_total == 4  # three debtors, then the file
    assert "Rôle n° 12 (provisoire) : 3 titre(s), 3980.00 € ; le fichier respecte les règles du PES." in (
        job.result["message"])
    page = client.get(period_url).content.decode()
    assert "Simulation (rien n'est enregistré)" in page and "Le fichier respecte les règles du PES." in page
    assert "2026017 · 2W" in page and "VER-RUM-0001 (02)" in page and "FR763" not in page
    assert reverse("job-download", kwargs={"pk": job.pk}) in page
    content = b"".join(client.get(reverse("job-download", kwargs={"pk": job.pk})).streaming_content)
    assert content == services.role_simulate(period=verger["period"], on=job.created_at.date()).content
    assert pes.pes_check(content) == []
    assert not PesRole.objects.exists() and not PesCounter.objects.exists()
    # Readers neither generate nor re-run a generation.
    assert client.post(_url("pes-generate", period_pk=verger["period"].pk)).status_code == 403
    assert not Job.objects.filter(kind=services.GENERATE_JOB_KIND).exists()


def test_manager_generates_downloads_and_imports_the_acquit(client, verger, users, eager):  # noqa: F811
    period_url = _url("pes-period", period_pk=verger["period"].pk)
    client.force_login(users["clerk"])
    assert client.post(_url("pes-generate", period_pk=verger["period"].pk)).status_code == 403
    client.force_login(users["manager"])
    with eager():
        response = client.post(_url("pes-generate", period_pk=verger["period"].pk))
    assert response.url == period_url
    job = Job.objects.get(kind=services.GENERATE_JOB_KIND)
    role = PesRole.objects.get()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.result["role_id"] == role.pk and role.request_key == job.params["request"]
    assert job.result["message"] == "Rôle n° 12/2026 généré : 3 titre(s), 3980.00 €."
    page = client.get(period_url).content.decode()
    assert _url("pes-role-file", pk=role.pk) in page and f"Télécharger {role.nom_fic}" in page
    page = client.get(_url("pes-role", pk=role.pk)).content.decode()
    assert role.nom_fic in page and "2026017 · 2W" in page
    download = client.get(_url("pes-role-file", pk=role.pk) + "?regenerer=1")
    assert download.content == bytes(role.content)
    assert download["Content-Disposition"] == f'attachment; filename="{role.nom_fic}"'
    # Again: a new request, nothing left to send, a French message on the period's page.
    with eager():
        client.post(_url("pes-generate", period_pk=verger["period"].pk))
    again = Job.objects.filter(kind=services.GENERATE_JOB_KIND).latest("pk")
    assert again.status == Job.Status.FAILED and PesRole.objects.count() == 1
    assert "Aucune facture émise de la période" in client.get(period_url).content.decode()
    client.force_login(users["clerk"])
    upload = SimpleUploadedFile("acquit.xml", _acquit(False), content_type="application/xml")
    assert client.post(_url("pes-acquit"), {"file": upload}).status_code == 403
    client.force_login(users["manager"])
    upload = SimpleUploadedFile("acquit.xml", _acquit(False), content_type="application/xml")
    response = client.post(_url("pes-acquit"), {"file": upload}, follow=True)
    role.refresh_from_db()
    assert role.status == PesRole.Status.REJECTED
    assert "Rôle n° 12 rejeté : 402 Compte nature 73532 inconnu" in response.content.decode()


def test_a_period_page_follows_its_jobs(client, verger, users, monkeypatch):  # noqa: F811
    """While the worker has not taken it, the page polls the job's fragment and reloads its live part
    when it ends; asking again shows the same job (never a second request)."""
    from core import tasks

    monkeypatch.setattr(tasks.run_job, "delay", lambda pk: None)
    client.force_login(users["manager"])
    for _twice in range(2):
        client.post(_url("pes-generate", period_pk=verger["period"].pk))
        client.post(_url("pes-simulate", period_pk=verger["period"].pk))
    job = Job.objects.get(kind=services.GENERATE_JOB_KIND)
    assert Job.objects.filter(kind=services.SIMULATE_JOB_KIND).count() == 1
    assert job.status == Job.Status.PENDING and job.params["on"] == str(job.created_at.date())
    page = client.get(_url("pes-period", period_pk=verger["period"].pk)).content.decode()
    assert 'hx-trigger="job-finished from:body"' in page and 'hx-select="#pes-live"' in page
    assert reverse("job-progress", kwargs={"pk": job.pk}) in page
    # The poll that sees the end tells the page (« job-finished ») to reload.
    from core.services.jobs import job_run

    job_run(job_id=job.pk, func=pes_jobs.pes_role_job)
    fragment = client.get(reverse("job-progress", kwargs={"pk": job.pk}), HTTP_HX_REQUEST="true")
    assert "job-finished" in fragment["HX-Trigger"] and "Rôle n° 12/2026 généré" in fragment.content.decode()


def test_settings_form(client, verger, users):  # noqa: F811
    data = {"id_post": "057011", "id_coll": "26570001200018", "fin_jur": "570000018", "cod_col": "123",
            "cod_bud": "01", "libelle_col_bud": "EHPAD", "sigle": "SEJOUR", "first_role_number": "12",
            "objet_template": "Frais de séjour {mois}", "edition": "", "per_encoding": "first_char",
            "per_fixed": "1", "asp_delay_days": "0", "debit_delay_days": "15", "debit_label": "SEJOUR {mois}",
            "product_codes": '{"accommodation": "HEB"}', "tiers_codes": '{"departement": "22/09/01"}',
            "pj_type": "007"}
    client.force_login(users["clerk"])
    assert client.post(_url("pes-settings"), data).status_code == 403
    client.force_login(users["manager"])
    bad = {**data, "fin_jur": "", "cod_col": "12", "tiers_codes": '{"departement": "99/09/01"}',
           "product_codes": '{"accommodation": "HEBERG"}'}
    page = client.post(_url("pes-settings"), bad).content.decode()
    assert "3 chiffres." in page and "Ce champ est obligatoire." in page
    assert "Codes de « departement » : « 99/09/01 » n&#x27;est pas CatTiers/NatJur/TypTiers" in page
    assert "Code produit de « accommodation » : « HEBERG » doit faire 1 à 4 caractères." in page
    assert client.post(_url("pes-settings"), {**data, "cod_bud": "02"}).status_code == 302
    assert PesSettings.objects.get().cod_bud == "02"


def test_scoping_and_private_establishments(client, verger, users):  # noqa: F811
    role = services.role_generate(period=verger["period"], on=date(2026, 4, 2))
    other = SectionFactory(alias="AUT-PUB", establishment__legal_status="public")
    other_period = period_create(section=other, start=date(2026, 3, 1))
    private = SectionFactory(alias="PRIV")
    private_period = period_create(section=private, start=date(2026, 3, 1))
    SectionAccessFactory(user=users["manager"], section=private, role="manager")
    SectionAccessFactory(user=users["manager"], section=other, role="manager")
    client.force_login(users["manager"])
    assert client.get(_url("pes-period", period_pk=other_period.pk)).status_code == 404
    assert client.get(_url("pes-role", alias="AUT-PUB", pk=role.pk)).status_code == 404
    assert client.get(_url("pes-role-file", alias="AUT-PUB", pk=role.pk)).status_code == 404
    assert client.post(_url("pes-generate", alias="AUT-PUB", period_pk=verger["period"].pk)).status_code == 404
    assert client.get(_url("pes", alias="PRIV")).status_code == 404
    assert client.get(_url("pes-period", alias="PRIV", period_pk=private_period.pk)).status_code == 404
    assert _url("pes", alias="PRIV") not in client.get(_url("accounting", alias="PRIV")).content.decode()
    # A user of another section only: 404 on Le Verger's pages.
    stranger = UserFactory(username="stranger")
    SectionAccessFactory(user=stranger, section=other, role="manager")
    client.force_login(stranger)
    assert client.get(_url("pes")).status_code == 404
    assert client.get(_url("pes-role-file", pk=role.pk)).status_code == 404
    # An acquit naming Le Verger's rôle, uploaded from another establishment, does not touch it.
    upload = SimpleUploadedFile("acquit.xml", _acquit(True), content_type="application/xml")
    response = client.post(_url("pes-acquit", alias="AUT-PUB"), {"file": upload}, follow=True)
    assert "aucun rôle n° 12 de l&#x27;exercice 2026" in response.content.decode()
    role.refresh_from_db()
    assert role.status == PesRole.Status.GENERATED
