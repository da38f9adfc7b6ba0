import pytest


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """The demo users' PBKDF2 hashes cost ~1 s per test; MD5 is fine for throw-away test users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
