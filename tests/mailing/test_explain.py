"""French explanations of SMTP replies and network errors, and the placeholders registry."""
import smtplib
import socket
import ssl

import pytest

from mailing.services import placeholders
from mailing.services.explain import error_from_exception


@pytest.mark.parametrize("code, step, text, expected, temporary", [
    (421, "data", "4.7.0 Too many connections", "momentanément indisponible", True),
    (451, "rcpt", "4.7.1 Greylisted, try again later", "liste grise", True),
    (450, "rcpt", "mailbox busy", "momentanément indisponible", True),
    (452, "rcpt", "insufficient storage", "manque momentanément de place", True),
    (535, "auth", "5.7.3 Authentication unsuccessful", "Avec un mot de passe : identifiant ou mot de passe incorrect", False),
    (535, "auth", "5.7.8 Error: authentication failed", "identifiant ou le mot de passe", False),
    (534, "auth", "5.7.9", "Office 365", False),
    (535, "auth", "5.7.139 Authentication unsuccessful, basic authentication is disabled", "SMTP AUTH", False),
    (530, "mail", "5.7.0 Authentication required", "exige une authentification", False),
    (550, "mail", "requested action not taken: mailbox unavailable", "n'a pas le droit d'envoyer", False),
    (554, "data", "5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException", "n'a pas le droit d'envoyer", False),
    (550, "rcpt", "5.1.1 User unknown", "inexistante", False),
    (550, "rcpt", "5.7.1 Relaying denied", "relayer", False),
    (552, "data", "message size exceeds", "trop volumineux", False),
    (554, "data", "5.7.1 spam", "indésirable", False),
])
def test_replies(code, step, text, expected, temporary):
    error = error_from_exception(smtplib.SMTPResponseException(code, text.encode()), step=step,
                                 sender="facturation@tilleuls.example")
    assert expected in error.explanation
    assert error.temporary is temporary


@pytest.mark.parametrize("exc, expected, temporary", [
    (ConnectionRefusedError(111, "refused"), "Connexion refusée par smtp.example.org:587", True),
    (socket.gaierror(-2, "Name or service not known"), "introuvable", True),
    (TimeoutError("timed out"), "ne répond pas", True),
    (smtplib.SMTPServerDisconnected("gone"), "a fermé la connexion dès le début", True),
    (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), "STARTTLS sur 587, SSL/TLS sur 465", False),
    (smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server."), "ne propose pas STARTTLS", False),
])
def test_connection_errors(exc, expected, temporary):
    step = "tls" if isinstance(exc, (ssl.SSLError, smtplib.SMTPNotSupportedError)) else "connect"
    error = error_from_exception(exc, step=step, host="smtp.example.org", port=587)
    assert expected in error.explanation
    assert error.temporary is temporary and error.connection_level


def test_certificate_error_names_the_problem():
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message = "Hostname mismatch, certificate is not valid for 'mail.example.org'"
    error = error_from_exception(exc, step="tls", host="mail.example.org", port=587)
    assert "certificat du serveur" in error.explanation and "Hostname mismatch" in error.explanation


def test_recipients_refused_keeps_each_address():
    exc = smtplib.SMTPRecipientsRefused({"a@example.org": (550, b"unknown"), "b@example.org": (451, b"later")})
    error = error_from_exception(exc, step="rcpt")
    assert set(error.refused) == {"a@example.org", "b@example.org"}
    assert error.temporary is False  # one of them is permanent


def test_placeholders_both_spellings_and_unknown_ones():
    placeholders.register_placeholder("personne", label="nom", sample="MAILLY Josiane", legacy="&personne")
    placeholders.register_placeholder("periode", label="période", sample="septembre 2022", legacy="&periode")
    text = "Ci-joint la facture de &personne pour la période de &periode ({personne}, {periode}) {inconnu}"
    assert placeholders.render(text, placeholders.sample_values()) == (
        "Ci-joint la facture de MAILLY Josiane pour la période de septembre 2022 (MAILLY Josiane, septembre 2022) "
        "{inconnu}")
    assert placeholders.unknown_placeholders(text) == ["{inconnu}"]
    assert placeholders.render("&personnel", {"personne": "X"}) == "&personnel"  # not a placeholder
