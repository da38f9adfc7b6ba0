"""Issue 10: credentials refused by the server stop the association's sending. One AUTH attempt,
then none — neither by the campaign's job nor by the periodic task — until the SMTP settings are
changed or the SMTP test succeeds; the messages stay queued (not given up)."""
from types import SimpleNamespace

import pytest

from core.services.jobs import JobError
from mailing.models import OutgoingMessage
from mailing.services.campaigns import campaign_create, campaign_send_job
from mailing.services.outbox import message_queue, outbox_run
from mailing.services.smtp_test import smtp_test
from mailing.tasks import outbox_process_due
from structures import crypto
from structures.models import Organisation

from .servers import SmtpServer

S = OutgoingMessage.Status


@pytest.fixture
def refusing(organisation, trust_test_ca):
    """A STARTTLS server that accepts only compte / bon; the association types « mauvais »."""
    with SmtpServer(starttls=trust_test_ca, auth=("compte", "bon")) as server:
        organisation.smtp_port, organisation.smtp_security, organisation.smtp_username = server.port, "starttls", \
            "compte"
        organisation.smtp_password = "mauvais"
        organisation.save()
        yield server


def _queue_campaign(organisation, n=3):
    campaign = campaign_create(organisation=organisation, label="Factures de novembre")
    for i in range(n):
        message_queue(organisation=organisation, campaign=campaign, sender_email="factu@tilleuls.example",
                      recipients=[f"famille{i}@example.org"], subject=f"Facture {i}", body="Bonjour")
    return campaign


def test_refused_login_blocks_the_association_after_one_attempt(organisation, clock, refusing):
    campaign = _queue_campaign(organisation)
    result = outbox_run(campaign.messages.all(), clock=clock)
    assert len(refusing.authenticator.calls) == 1  # one AUTH command, not one per mechanism
    assert result.aborted.blocked and result.aborted.code == 535
    assert result.aborted.explanation.startswith("Identifiants refusés : Authentification refusée (535)")
    organisation.refresh_from_db()
    assert organisation.smtp_blocked_at is not None
    assert "Identifiants refusés" in organisation.smtp_blocked_reason
    assert "les messages restent en file" in organisation.smtp_blocked_reason
    assert set(campaign.messages.values_list("status", flat=True)) == {S.QUEUED}  # kept, not given up

    # The periodic task every minute, a re-run of the campaign: no new login attempt.
    for _minute in range(3):
        outbox_process_due()
    outbox_run(campaign.messages.all(), clock=clock)
    with pytest.raises(JobError) as caught:
        campaign_send_job(job=SimpleNamespace(params={"campaign_id": campaign.pk}, progress_total=0),
                          progress=lambda *a: None)
    assert "Envoi suspendu : Identifiants refusés" in str(caught.value)
    assert "3 message(s) restent en file" in str(caught.value)
    assert len(refusing.authenticator.calls) == 1
    assert set(campaign.messages.values_list("status", flat=True)) == {S.QUEUED}
    assert all(m.attempts == 0 for m in campaign.messages.all())

    # Changing the settings lifts the block: the right password is typed again.
    organisation.smtp_password = "bon"
    organisation.save()
    organisation.refresh_from_db()
    assert organisation.smtp_blocked_at is None and organisation.smtp_blocked_reason == ""
    result = outbox_run(campaign.messages.all(), clock=clock)
    assert result.sent == 3
    assert len(refusing.authenticator.calls) == 2
    assert len(refusing.received) == 3


def test_a_successful_smtp_test_lifts_the_block(organisation, clock, refusing):
    campaign = _queue_campaign(organisation, n=1)
    outbox_run(campaign.messages.all(), clock=clock)
    # The mailbox's password is fixed on the server side... here: stored without going through save().
    Organisation.objects.filter(pk=organisation.pk).update(smtp_password_encrypted=crypto.encrypt("bon"))
    outbox_run(campaign.messages.all(), clock=clock)
    assert len(refusing.authenticator.calls) == 1 and refusing.received == []  # still blocked
    organisation.refresh_from_db()
    report = smtp_test(organisation=organisation, sender_email="factu@tilleuls.example", sender_name="EHPAD",
                       to="moi@example.org", clock=clock)
    assert report.ok
    organisation.refresh_from_db()
    assert organisation.smtp_blocked_at is None
    assert outbox_run(campaign.messages.all(), clock=clock).sent == 1


def test_which_errors_block():
    """454 (authentication temporarily unavailable) is retried as before, without blocking."""
    from mailing.services.explain import SendError
    from mailing.services.outbox import is_credentials_refusal

    assert not is_credentials_refusal(SendError("auth", "…", True, 454))
    assert is_credentials_refusal(SendError("auth", "…", False, 535))
    assert is_credentials_refusal(SendError("token", "…", False))
    assert not is_credentials_refusal(SendError("connect", "…", False))


def test_the_block_is_per_association(organisation, clock, refusing):
    from tests.factories import OrganisationFactory

    _queue_campaign(organisation, n=1)
    with SmtpServer() as other_server:
        other = OrganisationFactory(smtp_port=other_server.port, mail_delay_seconds=0, mail_pause_every=0)
        message_queue(organisation=other, sender_email="factu@autre.example", recipients=["x@example.org"],
                      subject="Facture", body="Bonjour")
        outbox_run(OutgoingMessage.objects.all(), clock=clock)  # the blocked association first…
        outbox_run(OutgoingMessage.objects.all(), clock=clock)  # …does not stop the other one
    assert len(other_server.received) == 1
    assert len(refusing.authenticator.calls) == 1


def test_an_unrelated_change_saved_from_a_stale_copy_keeps_the_block(organisation, clock, refusing):
    stale = Organisation.objects.get(pk=organisation.pk)  # e.g. the settings page opened before the failure
    _queue_campaign(organisation, n=1)
    outbox_run(OutgoingMessage.objects.all(), clock=clock)
    stale.mail_pause_every, stale.name = 5, "Nouveau nom"
    stale.save()
    stale.refresh_from_db()
    assert stale.name == "Nouveau nom" and stale.smtp_blocked_at is not None
    outbox_run(OutgoingMessage.objects.all(), clock=clock)
    assert len(refusing.authenticator.calls) == 1
