import os

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage", "--disable-quic"]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args,
            "executable_path": os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium"),
            "args": CHROMIUM_ARGS}


@pytest.fixture(autouse=True)
def test_settings(settings, tmp_path):
    """Fast password hashing (the demo users are re-created in many tests), pages rendered without a
    collectstatic manifest, media files in a temporary folder."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STATIC_ROOT.mkdir()
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def demo(db):
    """The demo association of ../shared/docs/demo-data.md without residents."""
    from demo.services.seed import demo_seed

    return demo_seed(residents=0)


@pytest.fixture
def demo_with_residents(db):
    from demo.services.seed import demo_seed

    return demo_seed(residents=12)


@pytest.fixture
def eager_celery():
    """Celery tasks run inline where they are sent (a job started by a view has ended when the view
    returns; with ``django_capture_on_commit_callbacks(execute=True)`` for those sent on commit). The
    previous setting is restored afterwards, whatever it was. Yields the Celery app."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous
