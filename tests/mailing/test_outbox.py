"""The outbox against real SMTP servers (aiosmtpd in-process): what the server received, what the
outbox recorded; security modes and AUTH; refusals, temporary failures and dropped connections."""
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from mailing.models import MessageAttempt, OutgoingMessage
from mailing.services.documents import Attachment, register_document
from mailing.services.outbox import message_queue, outbox_run

from .servers import DroppingServer, Handler, SmtpServer, free_port

S = OutgoingMessage.Status


def _configure(org, port, *, security="none", username="", password=""):
    org.smtp_port, org.smtp_security, org.smtp_username = port, security, username
    if password:
        org.smtp_password = password
    org.save()


def _queue(org, *, to=("famille@example.org",), subject="Facture TIL-2026-000001", **kwargs):
    return message_queue(organisation=org, sender_email="facturation@tilleuls.example",
                         sender_name="EHPAD Les Tilleuls — facturation", recipients=list(to), subject=subject,
                         body=kwargs.pop("body", "Bonjour,\nVeuillez trouver ci-joint la facture de MARTIN Jeanne."),
                         **kwargs)


def _run(clock, *ids):
    return outbox_run(OutgoingMessage.objects.filter(pk__in=ids) if ids else OutgoingMessage.objects.all(),
                      clock=clock)


def test_plain_smtp_delivers_headers_text_attachments_and_records_the_message(organisation, clock):
    default_storage.save("mailing/test/gazette.pdf", ContentFile(b"%PDF-1.4 gazette"))
    register_document("test.doc", lambda ident: Attachment(f"doc-{ident}.pdf", b"%PDF-1.7 document " + ident.encode()))
    with SmtpServer() as server:
        _configure(organisation, server.port)
        message = _queue(organisation, to=["famille@example.org", "tuteur@example.org"], read_receipt=True,
                         related_key="test.doc:7", related_label="TIL-2026-000001 — MARTIN Jeanne",
                         attachments=[{"document": "test.doc:7"},
                                      {"path": "mailing/test/gazette.pdf", "filename": "gazette.pdf",
                                       "mimetype": "application/pdf", "size": 16}])
        result = _run(clock)
    assert result.sent == 1 and result.aborted is None
    [received] = server.received
    assert received.mail_from == "facturation@tilleuls.example"
    assert received.rcpt_tos == ["famille@example.org", "tuteur@example.org"]
    mime = received.message
    assert mime["Subject"] == "Facture TIL-2026-000001"
    assert mime["From"] == "EHPAD Les Tilleuls — facturation <facturation@tilleuls.example>"
    assert mime["To"] == "famille@example.org, tuteur@example.org"
    assert mime["Disposition-Notification-To"] == "facturation@tilleuls.example"
    message.refresh_from_db()
    assert mime["Message-ID"] == message.message_id  # generated before sending, stored
    text = mime.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.startswith("Bonjour,\nVeuillez trouver ci-joint la facture de MARTIN")
    files = {part.get_filename(): part.get_content() for part in mime.iter_attachments()}
    assert files == {"doc-7.pdf": b"%PDF-1.7 document 7", "gazette.pdf": b"%PDF-1.4 gazette"}
    assert message.status == S.SENT and message.attempts == 1 and message.last_code == 250
    assert message.sent_at is not None and message.data_started_at is not None
    [attempt] = message.attempt_log.all()
    assert attempt.outcome == MessageAttempt.Outcome.SENT and attempt.code == 250
    assert "Message accepted" in attempt.reply


def test_starttls_with_auth_over_tls(organisation, clock, trust_test_ca):
    with SmtpServer(starttls=trust_test_ca, auth=("facturation@tilleuls.example", "s3cret")) as server:
        _configure(organisation, server.port, security="starttls", username="facturation@tilleuls.example",
                   password="s3cret")
        message = _queue(organisation)
        result = _run(clock)
    assert result.sent == 1
    [received] = server.received
    assert received.secure and received.login == "facturation@tilleuls.example"
    message.refresh_from_db()
    assert message.status == S.SENT


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls_port_465_style(organisation, clock, trust_test_ca):
    with SmtpServer(implicit_tls=trust_test_ca, auth=("compte", "pw")) as server:
        _configure(organisation, server.port, security="ssl", username="compte", password="pw")
        _queue(organisation)
        result = _run(clock)
    assert result.sent == 1 and server.received[0].login == "compte"


def test_untrusted_certificate_stops_the_run_and_keeps_the_message_queued(organisation, clock, certificate):
    with SmtpServer(starttls=certificate) as server:  # the test CA is NOT trusted here
        _configure(organisation, server.port, security="starttls")
        message = _queue(organisation)
        result = _run(clock)
    assert result.aborted is not None and not result.aborted.temporary
    assert "certificat" in result.aborted.explanation
    message.refresh_from_db()
    assert message.status == S.QUEUED and message.attempts == 0
    assert "certificat" in message.explanation
    assert message.attempt_log.get().outcome == MessageAttempt.Outcome.CONNECTION
    assert server.received == []


def test_wrong_password_is_explained_535_and_nothing_is_sent(organisation, clock, trust_test_ca):
    with SmtpServer(starttls=trust_test_ca, auth=("compte", "bon")) as server:
        _configure(organisation, server.port, security="starttls", username="compte", password="mauvais")
        message = _queue(organisation)
        result = _run(clock)
    assert result.aborted.code == 535
    assert "Authentification refusée (535)" in result.aborted.explanation
    message.refresh_from_db()
    assert message.status == S.QUEUED and message.last_code == 535
    assert clock.sleeps == []  # permanent: no waiting, no retry


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_plain_auth_without_tls_is_refused_with_advice(organisation, clock):
    with SmtpServer(auth=("compte", "pw"), handler=Handler()) as server:
        server.controller.SMTP_kwargs["auth_require_tls"] = True  # like real servers
        _configure(organisation, server.port, username="compte", password="pw")
        _queue(organisation)
        result = _run(clock)
    assert result.aborted is not None
    assert "STARTTLS" in result.aborted.explanation


def test_one_refused_recipient_among_two_is_logged_per_address(organisation, clock):
    handler = Handler(rcpt_replies={"inconnu@example.org": "550 5.1.1 <inconnu@example.org>: mailbox unavailable"})
    with SmtpServer(handler) as server:
        _configure(organisation, server.port)
        message = _queue(organisation, to=["famille@example.org", "inconnu@example.org"])
        _run(clock)
    assert server.received[0].rcpt_tos == ["famille@example.org"]
    message.refresh_from_db()
    assert message.status == S.SENT
    assert set(message.refused) == {"inconnu@example.org"}
    refusal = message.refused["inconnu@example.org"]
    assert refusal["code"] == 550 and "inexistante" in refusal["explanation"]
    assert "refusé pour inconnu@example.org" in message.explanation
    assert message.attempt_log.get().outcome == MessageAttempt.Outcome.PARTIAL


def test_refused_single_recipient_is_a_permanent_failure(organisation, clock):
    handler = Handler(rcpt_replies={"inconnu@example.org": "550 5.1.1 User unknown"})
    with SmtpServer(handler) as server:
        _configure(organisation, server.port)
        message = _queue(organisation, to=["inconnu@example.org"])
        other = _queue(organisation, to=["famille@example.org"])
        result = _run(clock)
    assert (result.sent, result.failed) == (1, 1)
    message.refresh_from_db()
    assert message.status == S.FAILED and message.attempts == 1 and message.last_code == 550
    assert "Adresse du destinataire « inconnu@example.org » inexistante" in message.explanation
    other.refresh_from_db()
    assert other.status == S.SENT
    assert clock.sleeps == []


def test_sender_not_allowed_for_the_account_550_at_mail_from(organisation, clock):
    """Seed 000: « requested action not taken: mailbox unavailable » = the SMTP account may not send
    for the establishment's sender address."""
    handler = Handler(mail_replies=["550 5.7.60 SMTP; Client does not have permissions to send as this sender"])
    with SmtpServer(handler) as server:
        _configure(organisation, server.port)
        message = _queue(organisation)
        _run(clock)
    message.refresh_from_db()
    assert message.status == S.FAILED and message.last_code == 550
    assert "n'a pas le droit d'envoyer des messages pour l'adresse d'expéditeur « facturation@tilleuls.example »" \
        in message.explanation
    assert server.received == []


def test_421_then_250_is_retried_after_the_back_off_and_sent_once(organisation, clock, settings):
    settings.MAIL_RETRY_DELAYS = [60, 300, 900]
    handler = Handler(data_replies=["421 4.7.0 Too many messages, try again later"])
    with SmtpServer(handler) as server:
        _configure(organisation, server.port)
        message = _queue(organisation)
        start = clock.now()
        result = _run(clock)
    assert result.sent == 1
    assert len(server.received) == 1
    message.refresh_from_db()
    assert message.status == S.SENT and message.attempts == 2
    first, second = message.attempt_log.all()
    assert first.outcome == MessageAttempt.Outcome.TEMPORARY and first.code == 421
    assert "momentanément indisponible" in first.explanation and "tentative 1 sur 4" in first.explanation
    assert second.outcome == MessageAttempt.Outcome.SENT
    assert second.started_at - start >= timedelta(seconds=60)  # waited for the back-off (fake clock)
    assert 60 in clock.sleeps


def test_451_greylisting_on_a_recipient_is_temporary(organisation, clock):
    handler = Handler(rcpt_replies={"famille@example.org": "451 4.7.1 Greylisted, please try again later"})
    with SmtpServer(handler) as server:
        _configure(organisation, server.port)
        message = _queue(organisation)
        result = outbox_run(OutgoingMessage.objects.all(), clock=clock, wait=False)
    assert result.retried == 1
    message.refresh_from_db()
    assert message.status == S.RETRY and message.next_attempt_at > clock.now()
    assert "liste grise" in message.explanation


def test_connection_dropped_during_data_is_retried_then_given_up(organisation, clock):
    handler = Handler(drop_on_data=-1)
    with SmtpServer(handler) as server:
        _configure(organisation, server.port)
        message = _queue(organisation)
        result = _run(clock)
    message.refresh_from_db()
    assert message.status == S.FAILED and message.attempts == 4
    assert "coupé la connexion pendant l'envoi" in message.explanation and "abandon après 4" in message.explanation
    assert result.failed == 1 and server.received == []
    assert [a.outcome for a in message.attempt_log.all()] == ["temporary"] * 3 + ["permanent"]


def test_connection_dropped_once_then_accepted(organisation, clock):
    handler = Handler(drop_on_data=1)
    with SmtpServer(handler) as server:
        _configure(organisation, server.port)
        message = _queue(organisation)
        _run(clock)
    message.refresh_from_db()
    assert message.status == S.SENT and message.attempts == 2 and len(server.received) == 1


def test_server_dropping_at_connect_is_retried_at_run_level_then_reported(organisation, clock, settings):
    settings.MAIL_RETRY_DELAYS = [30, 120]
    with DroppingServer() as server:
        _configure(organisation, server.port)
        messages = [_queue(organisation), _queue(organisation)]
        result = _run(clock)
    assert result.aborted is not None and result.aborted.temporary
    assert "a fermé la connexion dès le début" in result.aborted.explanation
    assert clock.sleeps == [30, 120]
    for message in messages:
        message.refresh_from_db()
        assert message.status == S.QUEUED and message.attempts == 0  # not charged: the account failed


def test_connection_refused_is_explained(organisation, clock):
    _configure(organisation, free_port())
    message = _queue(organisation)
    result = outbox_run(OutgoingMessage.objects.all(), clock=clock, wait=False)
    assert "Connexion refusée par 127.0.0.1" in result.aborted.explanation
    message.refresh_from_db()
    assert message.status == S.QUEUED and "Connexion refusée" in message.explanation


def test_missing_document_fails_the_message_with_a_reason(organisation, clock):
    with SmtpServer() as server:
        _configure(organisation, server.port)
        message = _queue(organisation, attachments=[{"path": "mailing/nowhere.pdf", "filename": "x.pdf"}])
        _run(clock)
    message.refresh_from_db()
    assert message.status == S.FAILED and "pièce jointe n'a pas pu être préparée" in message.explanation
    assert server.received == []


def test_connection_is_reused_between_messages(organisation, clock):
    with SmtpServer() as server:
        _configure(organisation, server.port)
        for n in range(5):
            _queue(organisation, subject=f"Facture {n}")
        opened = []
        from mailing.services.smtp import SmtpConnection

        class Counting(SmtpConnection):
            def open(self):
                opened.append(1)
                return super().open()

        result = outbox_run(OutgoingMessage.objects.all(), clock=clock, connection_factory=Counting)
    assert result.sent == 5 and len(opened) == 1
    assert [m.message["Subject"] for m in server.received] == [f"Facture {n}" for n in range(5)]


@pytest.mark.parametrize("action", ["requeue", "mark_sent"])
def test_manual_decisions_are_logged(organisation, clock, action):
    from mailing.services.outbox import message_mark_sent, message_requeue

    message = _queue(organisation)
    OutgoingMessage.objects.filter(pk=message.pk).update(status=S.UNCERTAIN)
    message.refresh_from_db()
    if action == "requeue":
        message_requeue(message=message, user="clerc")
        assert message.status == S.QUEUED and message.attempts == 0
    else:
        message_mark_sent(message=message, user="clerc")
        assert message.status == S.SENT
    assert message.attempt_log.get().outcome == MessageAttempt.Outcome.MANUAL


def test_address_with_accents_uses_smtputf8(organisation, clock):
    with SmtpServer() as server:  # aiosmtpd announces SMTPUTF8
        _configure(organisation, server.port)
        message = _queue(organisation, to=["émile.2@résidents.example", "famille@example.org"])
        _run(clock)
    message.refresh_from_db()
    assert message.status == S.SENT and message.refused == {}
    assert server.received[0].rcpt_tos == ["émile.2@résidents.example", "famille@example.org"]
    assert server.received[0].message["To"] == "émile.2@résidents.example, famille@example.org"


def test_address_with_accents_without_smtputf8_is_refused_alone_and_the_session_stays_clean(organisation, clock):
    """A server without SMTPUTF8: the accented address is refused with an explanation, the others
    get the message, and the next message starts a clean transaction."""
    from mailing.services.smtp import SmtpConnection

    class NoUtf8(SmtpConnection):
        supports_utf8 = False

    with SmtpServer() as server:
        _configure(organisation, server.port)
        first = _queue(organisation, to=["émile@example.org", "famille@example.org"])
        only_accented = _queue(organisation, to=["émile@example.org"])
        after = _queue(organisation, to=["autre@example.org"])
        outbox_run(OutgoingMessage.objects.all(), clock=clock, connection_factory=NoUtf8)
    first.refresh_from_db(), only_accented.refresh_from_db(), after.refresh_from_db()
    assert first.status == S.SENT and "caractères accentués" in first.refused["émile@example.org"]["explanation"]
    assert only_accented.status == S.FAILED and "caractères accentués" in only_accented.explanation
    assert after.status == S.SENT
    assert [r.rcpt_tos for r in server.received] == [["famille@example.org"], ["autre@example.org"]]
