"""Production configuration: `manage.py check --deploy` is clean with the documented variables
(.env.example plus real secrets), our own checks catch the development secrets, and
docker-compose.yml validates."""
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


@pytest.fixture
def production_env(tmp_path) -> dict[str, str]:
    env = env_example()
    env.update(SECRET_KEY=secrets.token_urlsafe(64), ENCRYPTION_KEY=Fernet.generate_key().decode(),
               SEJOUR_VAR_DIR=str(tmp_path))
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run manage.py in a clean environment (nothing inherited but PATH/HOME/LANG)."""
    base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


def deploy_check(env):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    return result.returncode, result.stdout + result.stderr


def test_env_example_documents_the_production_variables():
    env = env_example()
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "ENCRYPTION_KEY", "ALLOWED_HOSTS",
                 "CSRF_TRUSTED_ORIGINS", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
                 "SECURE_HSTS_SECONDS", "BEHIND_HTTPS_PROXY", "POSTGRES_PASSWORD"):
        assert env.get(name), name
    assert env["DEBUG"] == "0"
    assert env["DEMO_ALLOWED"] == "0"
    assert env["DATABASE_URL"].startswith("postgres://") and env["CELERY_BROKER_URL"].startswith("redis://")


def test_check_deploy_is_clean_with_production_variables(production_env):
    code, output = deploy_check(production_env)
    assert code == 0, output
    assert "System check identified no issues" in output
    assert "WARNINGS" not in output


def _refusal(result) -> str:
    """The one French line a refused start prints (no traceback)."""
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Démarrage refusé (DEBUG=0)")
    return lines[0]


def test_start_refused_on_the_development_secret_key(production_env):
    del production_env["SECRET_KEY"]  # falls back to the key shipped in config/settings.py
    assert "définissez SECRET_KEY" in _refusal(manage("check", env=production_env))


@pytest.mark.parametrize("placeholder", ["a-changer-a-changer-a-changer-a-changer-a-changer-a-changer", "a-changer"])
def test_start_refused_on_the_env_example_placeholders(production_env, placeholder):
    production_env["SECRET_KEY"] = placeholder
    assert "SECRET_KEY" in _refusal(manage("check", env=production_env))
    production_env["SECRET_KEY"] = secrets.token_urlsafe(64)
    production_env["ENCRYPTION_KEY"] = "a-changer"
    assert "définissez ENCRYPTION_KEY" in _refusal(manage("check", env=production_env))


def test_start_refused_without_encryption_key(production_env):
    production_env["ENCRYPTION_KEY"] = ""
    line = _refusal(manage("check", env=production_env))
    assert "définissez ENCRYPTION_KEY" in line and "Fernet" in line


def test_check_deploy_fails_with_demo_allowed(production_env):
    production_env["DEMO_ALLOWED"] = "1"
    code, output = deploy_check(production_env)
    assert code != 0 and "sejour.E002" in output


def test_demo_allowed_is_off_by_default(production_env):
    del production_env["DEMO_ALLOWED"]
    code, output = deploy_check(production_env)
    assert code == 0, output


def test_check_deploy_fails_while_a_demo_login_exists(db, settings):
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    from demo.checks import check_demo

    settings.DEMO_ALLOWED = False
    assert check_demo(None) == []
    user = get_user_model().objects.create_user("tilleuls", password="demo")
    with pytest.raises(SystemCheckError, match="sejour.E003"):
        call_command("check", deploy=True)
    user.set_password(secrets.token_urlsafe(20))
    user.save()
    assert check_demo(None) == []


def test_media_is_never_served_by_a_url(settings):
    """Even with DEBUG on (./dev run), no URL maps to MEDIA_ROOT: PDFs only through checked views."""
    import importlib

    from django.urls import Resolver404, clear_url_caches, resolve

    import config.urls

    settings.DEBUG = True
    try:
        importlib.reload(config.urls)
        clear_url_caches()
        with pytest.raises(Resolver404):
            resolve("/" + settings.MEDIA_URL + "invoices/1/facture.pdf")
    finally:
        settings.DEBUG = False
        importlib.reload(config.urls)
        clear_url_caches()


def test_invalid_encryption_key_is_an_error_even_without_deploy(tmp_path):
    result = manage("check", env={"DEBUG": "1", "ENCRYPTION_KEY": "not-a-fernet-key", "SEJOUR_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "sejour.E001" in result.stderr


def test_each_security_variable_matters(production_env):
    expected = {"SECURE_SSL_REDIRECT": "security.W008", "SESSION_COOKIE_SECURE": "security.W012",
                "CSRF_COOKIE_SECURE": "security.W016", "SECURE_HSTS_SECONDS": "security.W004"}
    production_env.update({variable: "0" for variable in expected})
    code, output = deploy_check(production_env)
    assert code != 0
    for variable, warning in expected.items():
        assert warning in output, variable


def test_debug_in_production_is_flagged_by_django_not_by_our_checks(production_env):
    production_env.update(DEBUG="1", ENCRYPTION_KEY="")
    del production_env["SECRET_KEY"]
    code, output = deploy_check(production_env)
    assert code != 0 and "security.W018" in output
    assert "Démarrage refusé" not in output  # DEBUG on: the development secrets are accepted


def test_no_environment_at_all_refuses_to_start(tmp_path):
    """DEBUG is off by default: without secrets nothing starts (fail closed)."""
    assert "SECRET_KEY" in _refusal(manage("check", env={"SEJOUR_VAR_DIR": str(tmp_path)}))


def test_makemigrations_check_needs_no_secrets(tmp_path):
    """Reading the code (models against migrations) needs no secret; serving still does."""
    result = manage("makemigrations", "--check", "--dry-run", env={"SEJOUR_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout
    assert "SECRET_KEY" in _refusal(manage("migrate", "--plan", env={"SEJOUR_VAR_DIR": str(tmp_path)}))


def test_embedded_default_needs_no_environment_but_debug(tmp_path):
    """DEBUG=1 only (what ./dev sets): SQLite + filesystem broker under var/, and a clean (non-deploy) check."""
    result = manage("check", env={"DEBUG": "1", "SEJOUR_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
    assert (tmp_path / "broker" / "queue").is_dir()


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_docker_compose_file_validates():
    env = {**os.environ, "SEJOUR_ENV_FILE": ".env.example"}
    cmd = ["docker-compose", "--env-file", ".env.example", "-f", "docker-compose.yml"]
    result = subprocess.run([*cmd, "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    services = subprocess.run([*cmd, "config", "--services"], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=60).stdout.split()
    assert set(services) == {"db", "redis", "web", "worker", "worker-pdf", "worker-mail", "beat"}
    config = subprocess.run([*cmd, "config"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60).stdout
    assert "image: postgres:15" in config and "image: redis:7" in config
    assert "migrate --noinput" in config and "gunicorn config.wsgi" in config
    # docker-compose may fold long strings differently from one version to the next: compare words.
    assert "check --deploy --fail-level WARNING &&" in " ".join(config.split())  # refuses to start insecure
    assert "--max-tasks-per-child" in config
    assert "/var/lib/sejour/celerybeat-schedule" in config


def test_dockerfile_runs_as_a_non_root_user():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim-bookworm" in dockerfile
    assert "collectstatic" in dockerfile
    assert "\nUSER sejour\n" in dockerfile
    assert "libpango-1.0-0" in dockerfile and "libharfbuzz-subset0" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".venv" in ignored and "var" in ignored


def test_demo_data_is_refused_unless_asked_for(tmp_path):
    """DEMO_ALLOWED defaults to off outside ./dev (which sets it, as the tests do)."""
    result = manage("seed_demo", "--no-residents", env={"DEBUG": "1", "SEJOUR_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0 and "DEMO_ALLOWED=0" in result.stderr
    assert "DEMO_ALLOWED=\"${DEMO_ALLOWED:-1}\"" in (ROOT / "dev").read_text()


def test_workers_consume_separate_queues():
    """docker-compose runs one worker service per queue; ./dev run one worker for all of them."""
    import re

    from django.conf import settings

    compose = (ROOT / "docker-compose.yml").read_text()
    queues = {q.name for q in settings.CELERY_TASK_QUEUES}
    assert queues == {"celery", "mail", "pdf"}
    blocks = dict(re.findall(r"\n  (worker[\w-]*):\n(.*?)(?=\n  \w|\Z)", compose, re.S))
    assert set(blocks) == {"worker", "worker-pdf", "worker-mail"}
    consumed = {}
    for name, block in blocks.items():
        flat = re.sub(r"[\s,\[\]\-\"]+", " ", block)
        consumed[name] = re.search(r" Q (\w+) ", flat).group(1)
    assert consumed == {"worker": "celery", "worker-pdf": "pdf", "worker-mail": "mail"}
    dev = (ROOT / "dev").read_text()
    assert "worker -B -Q celery,pdf,mail" in dev


def test_dev_run_shows_the_french_error_pages_and_serves_static_files(tmp_path):
    """`./dev run` runs with the product's 404 page (not Django's debug page listing every URL),
    static files served by whitenoise: the settings it uses, read from the script itself."""
    import re

    dev = (ROOT / "dev").read_text()
    run = dev[dev.index("cmd_run() {"):dev.index("cmd_test() {")]
    exported = dict(re.findall(r'export (\w+)="\$\{\w+:-([^}]*)\}"', run))
    assert exported.get("DEBUG") == "0", exported
    assert "\n  dev_secrets\n" in run  # DEBUG=0 refuses the development key: ./dev makes its own
    from cryptography.fernet import Fernet
    secrets_env = {"SECRET_KEY": "x" * 50, "ENCRYPTION_KEY": Fernet.generate_key().decode()}
    script = (
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "from django.test import Client\n"
        "c = Client()\n"
        "r = c.get('/cette-page-n-existe-pas/')\n"
        "css = c.get(settings.STATIC_URL + 'css/sejour.css')\n"
        "print(settings.DEBUG, r.status_code, css.status_code)\n"
        "print(r.content.decode())\n"
    )
    base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**base, **exported, **secrets_env, "SEJOUR_VAR_DIR": str(tmp_path),
                                 "DJANGO_SETTINGS_MODULE": "config.settings"})
    assert result.returncode == 0, result.stderr
    first, _, page = result.stdout.partition("\n")
    assert first == "False 404 200"
    assert "Page introuvable" in page and "appartient à une section" in page
    assert "URLconf" not in page and "admin/" not in page
