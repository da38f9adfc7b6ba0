"""Issue 9: Séjour never sends a login over an unencrypted connection to a server that is not
local. The test server (aiosmtpd, no TLS, AUTH allowed in clear) is reached by a non-local name
that the test resolves to 127.0.0.1: nothing must reach it, and the refusal is explained."""
import socket

import pytest

from mailing.services.explain import SendError
from mailing.services.smtp import SmtpConnection, SmtpSettings
from mailing.services.smtp_test import smtp_test

from .servers import SmtpServer

REMOTE_NAME = "smtp.exemple-distant.test"


@pytest.fixture
def remote_name(monkeypatch):
    """``REMOTE_NAME`` resolves to 127.0.0.1 (as a DNS answer would); other names unchanged."""
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):
        return real("127.0.0.1" if host == REMOTE_NAME else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return REMOTE_NAME


def test_no_login_in_clear_to_a_remote_name(remote_name):
    with SmtpServer(auth=("factu@exemple.fr", "secret")) as server:
        conn = SmtpConnection(SmtpSettings(host=remote_name, port=server.port, security="none",
                                           username="factu@exemple.fr", password="secret"))
        with pytest.raises(SendError) as caught:
            conn.open()
        assert server.authenticator.calls == []  # the password never left
    error = caught.value
    assert error.step == "auth" and not error.temporary
    assert "le mot de passe circulerait en clair vers « smtp.exemple-distant.test »" in error.explanation
    assert "STARTTLS" in error.explanation


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_login_in_clear_to_the_local_machine_is_allowed():
    with SmtpServer(auth=("factu@exemple.fr", "secret")) as server:
        for host in ("127.0.0.1", "localhost"):
            with SmtpConnection(SmtpSettings(host=host, port=server.port, security="none",
                                             username="factu@exemple.fr", password="secret")):
                pass
    assert [c[1:] for c in server.authenticator.calls] == [("factu@exemple.fr", "secret")] * 2


def test_smtp_test_page_explains_the_refusal(db, organisation, remote_name):
    with SmtpServer(auth=("factu@exemple.fr", "secret")) as server:
        organisation.smtp_host, organisation.smtp_port = remote_name, server.port
        organisation.smtp_username = "factu@exemple.fr"
        organisation.smtp_password = "secret"
        organisation.save()
        report = smtp_test(organisation=organisation, sender_email="factu@exemple.fr", sender_name="EHPAD",
                           to="moi@exemple.fr")
        assert server.authenticator.calls == [] and server.received == []
    assert not report.ok
    assert "circulerait en clair" in report.summary
    assert [(s.step, s.ok) for s in report.steps] == [("auth", False)]
