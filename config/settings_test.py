"""Settings of the test suite: the production settings (DEBUG off) with throw-away secrets.

``config.settings`` refuses to start with DEBUG off on the development SECRET_KEY or without
ENCRYPTION_KEY; the tests run with DEBUG off, so random secrets are put in the environment first
(subprocesses started by tests inherit them). The demo data is allowed in tests.
"""
import os
import secrets

from cryptography.fernet import Fernet

os.environ.setdefault("SECRET_KEY", "test-" + secrets.token_urlsafe(50))
os.environ.setdefault("ENCRYPTION_KEY", Fernet.generate_key().decode())
os.environ.setdefault("DEMO_ALLOWED", "1")
# Django's test client logs in without a request, which django-axes refuses: the lockout tests
# (tests/test_login_lockout.py) switch it back on.
os.environ.setdefault("LOGIN_LOCKOUT_ENABLED", "0")

from .settings import *  # noqa: E402,F401,F403
