"""A worker killed in the middle of a campaign, then restarted: no message sent twice, none lost.

The kill is simulated where a real one can happen (each state change of the outbox is committed
on its own, so the database is left exactly as a SIGKILL would leave it):

* between two messages (after N complete sends);
* after MAIL/RCPT, just before DATA (nothing transmitted: requeued, sent once by the restart);
* after the server accepted the message but before the outbox recorded it (the only uncertain
  window: the message is marked « à vérifier », never resent automatically).
"""
from datetime import timedelta

import pytest
from django.utils import timezone

from mailing.models import MessageAttempt, OutgoingMessage
from mailing.services.outbox import message_queue, outbox_recover, outbox_run
from mailing.services.smtp import SmtpConnection

from .servers import SmtpServer

S = OutgoingMessage.Status


class Killed(BaseException):
    """What a SIGKILL looks like from the database's point of view: the code just stops."""


def killing_connection(*, after_sends: int, where: str):
    state = {"sends": 0}

    class Dying(SmtpConnection):
        def send(self, *, sender, recipients, data, before_data=None):
            state["sends"] += 1
            if state["sends"] > after_sends and where == "before_data":
                def die_first():
                    raise Killed()
                return super().send(sender=sender, recipients=recipients, data=data, before_data=die_first)
            result = super().send(sender=sender, recipients=recipients, data=data, before_data=before_data)
            if state["sends"] > after_sends and where == "after_accept":
                raise Killed()
            return result

    return Dying


@pytest.fixture
def queued(organisation):
    def make(server, n=10):
        organisation.smtp_port = server.port
        organisation.save()
        return [message_queue(organisation=organisation, sender_email="f@tilleuls.example",
                              recipients=[f"famille{i}@example.org"], subject=f"Facture {i}", body="x",
                              related_key=f"test.invoice:{i}") for i in range(n)]
    return make


def _received_ids(server):
    return [r.message["Message-ID"] for r in server.received]


def test_killed_between_messages_then_restarted(organisation, clock, queued):
    with SmtpServer() as server:
        messages = queued(server)
        with pytest.raises(Killed):
            outbox_run(OutgoingMessage.objects.all(), clock=clock,
                       progress=lambda r: (_ for _ in ()).throw(Killed()) if r.sent == 4 else None)
        assert OutgoingMessage.objects.filter(status=S.SENT).count() == 4
        result = outbox_run(OutgoingMessage.objects.all(), clock=clock)
    assert result.sent == 6
    ids = _received_ids(server)
    assert sorted(ids) == sorted(m.message_id for m in messages) and len(set(ids)) == 10


def test_killed_just_before_data_the_message_is_requeued_and_sent_once(organisation, clock, queued):
    with SmtpServer() as server:
        messages = queued(server)
        with pytest.raises(Killed):
            outbox_run(OutgoingMessage.objects.all(), clock=clock,
                       connection_factory=killing_connection(after_sends=3, where="before_data"))
        stuck = OutgoingMessage.objects.get(status=S.SENDING)
        assert stuck.data_started_at is None
        assert len(server.received) == 3
        result = outbox_run(OutgoingMessage.objects.all(), clock=clock)  # the restarted worker
    assert result.requeued == 1 and result.sent == 7
    ids = _received_ids(server)
    assert len(ids) == 10 and len(set(ids)) == 10
    assert sorted(ids) == sorted(m.message_id for m in messages)
    stuck.refresh_from_db()
    assert stuck.status == S.SENT
    assert [a.outcome for a in stuck.attempt_log.all()] == [MessageAttempt.Outcome.INTERRUPTED,
                                                            MessageAttempt.Outcome.SENT]


def test_killed_after_the_server_accepted_the_message_is_uncertain_never_resent(organisation, clock, queued):
    with SmtpServer() as server:
        queued(server)
        with pytest.raises(Killed):
            outbox_run(OutgoingMessage.objects.all(), clock=clock,
                       connection_factory=killing_connection(after_sends=3, where="after_accept"))
        assert len(server.received) == 4  # the 4th went out, the outbox did not record it
        stuck = OutgoingMessage.objects.get(status=S.SENDING)
        assert stuck.data_started_at is not None
        result = outbox_run(OutgoingMessage.objects.all(), clock=clock)
        assert result.uncertain == 1 and result.sent == 6
        # A third run changes nothing: the uncertain message waits for a person.
        again = outbox_run(OutgoingMessage.objects.all(), clock=clock)
    assert again.sent == 0
    ids = _received_ids(server)
    assert len(ids) == 10 and len(set(ids)) == 10  # every message exactly once
    stuck.refresh_from_db()
    assert stuck.status == S.UNCERTAIN and "peut-être parti" in stuck.explanation
    assert stuck.attempt_log.get().outcome == MessageAttempt.Outcome.UNCERTAIN


def test_periodic_recovery_waits_for_the_lease(organisation, clock, settings):
    settings.MAIL_SENDING_LEASE_SECONDS = 900
    message = message_queue(organisation=organisation, sender_email="f@x.example", recipients=["a@example.org"],
                            subject="s", body="b")
    OutgoingMessage.objects.filter(pk=message.pk).update(status=S.SENDING, claimed_by="w1",
                                                         claimed_at=clock.now() - timedelta(minutes=5))
    assert outbox_recover(clock=clock) == {"requeued": 0, "uncertain": 0}  # maybe still alive
    OutgoingMessage.objects.filter(pk=message.pk).update(claimed_at=clock.now() - timedelta(minutes=20))
    assert outbox_recover(clock=clock) == {"requeued": 1, "uncertain": 0}
    message.refresh_from_db()
    assert message.status == S.QUEUED


def test_a_worker_that_lost_its_claim_does_not_send(organisation, clock, queued):
    """Someone recovered the message while its worker was between RCPT and DATA (a stalled, not
    dead, worker): the compare-and-set before DATA fails, the old claim transmits nothing, and
    the message is sent exactly once (by whoever claims it next — here the same run)."""
    with SmtpServer() as server:
        [message] = queued(server, n=1)
        steals = []

        class Stalled(SmtpConnection):
            def send(self, *, sender, recipients, data, before_data=None):
                def steal_then_continue():
                    if not steals:
                        steals.append(outbox_recover(OutgoingMessage.objects.all(),
                                                     claimed_before=timezone.now() + timedelta(days=1)))
                    return before_data()
                return super().send(sender=sender, recipients=recipients, data=data, before_data=steal_then_continue)

        result = outbox_run(OutgoingMessage.objects.all(), clock=clock, connection_factory=Stalled)
    assert steals == [{"requeued": 1, "uncertain": 0}]
    assert result.sent == 1 and len(server.received) == 1
    message.refresh_from_db()
    assert message.status == S.SENT
    assert [a.outcome for a in message.attempt_log.all()] == [MessageAttempt.Outcome.INTERRUPTED,
                                                              MessageAttempt.Outcome.SENT]


@pytest.mark.django_db(transaction=True)
def test_three_workers_at_once_send_each_message_exactly_once():
    """Three worker threads (their own database connections) empty the same outbox: the claims never
    overlap (``select_for_update(skip_locked=True)`` on PostgreSQL, compare-and-set everywhere)."""
    import threading

    from django.db import connection as db_connection
    from django.db import connections

    from tests.factories import OrganisationFactory

    org = OrganisationFactory(smtp_security="none", mail_delay_seconds=0, mail_pause_every=0, mail_pause_seconds=0)
    errors = []
    with SmtpServer() as server:
        org.smtp_port = server.port
        org.save()
        messages = [message_queue(organisation=org, sender_email="f@x.example", recipients=[f"a{i}@example.org"],
                                  subject=f"n{i}", body="b") for i in range(30)]

        def worker():
            try:
                outbox_run(OutgoingMessage.objects.all(), wait=True, recover_now=False)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                connections.close_all()

        if db_connection.vendor == "sqlite" and db_connection.is_in_memory_db():
            pytest.skip("needs a database shared between threads (PostgreSQL or an SQLite file)")
        threads = [threading.Thread(target=worker) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert errors == []
    ids = [r.message["Message-ID"] for r in server.received]
    assert len(ids) == 30 and sorted(ids) == sorted(m.message_id for m in messages)
    assert OutgoingMessage.objects.filter(status=S.SENT).count() == 30
