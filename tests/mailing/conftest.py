from datetime import timedelta

import pytest
from django.utils import timezone

from mailing.services.throttle import FakeClock
from tests.factories import OrganisationFactory

from .servers import make_certificate


@pytest.fixture
def clock():
    """A fake clock a little ahead of the real one (messages queued "now" are due at once)."""
    return FakeClock(timezone.now() + timedelta(seconds=30))


@pytest.fixture
def organisation(db):
    """An association with no pacing (throttle tests set their own)."""
    return OrganisationFactory(smtp_host="127.0.0.1", smtp_security="none", mail_delay_seconds=0,
                               mail_pause_every=0, mail_pause_seconds=0)


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def trust_test_ca(settings, certificate):
    settings.MAIL_SMTP_CAFILE = str(certificate[0])
    return certificate
