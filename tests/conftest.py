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
