"""The pace of one SMTP account, shared by every worker, with an injected clock (no real sleep)."""
from datetime import timedelta
from decimal import Decimal

from mailing.models import OutgoingMessage, SmtpThrottle
from mailing.services.outbox import message_queue, outbox_run
from mailing.services.throttle import FakeClock, throttle_reserve, throttle_wait
from tests.factories import OrganisationFactory

from .servers import SmtpServer


def _paced(**fields):
    values = {"mail_delay_seconds": Decimal("2"), "mail_pause_every": 10, "mail_pause_seconds": Decimal("10"),
              **fields}
    return OrganisationFactory(**values)


def test_two_seconds_between_messages_and_ten_every_ten(db):
    org = _paced()
    clock = FakeClock()
    start = clock.now()
    offsets = []
    for _ in range(23):
        throttle_wait(organisation_id=org.pk, clock=clock)
        offsets.append((clock.now() - start).total_seconds())
    assert offsets == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18,   # 10 messages 2 s apart…
                       28, 30, 32, 34, 36, 38, 40, 42, 44, 46,  # …then a 10 s pause
                       56, 58, 60]
    assert clock.sleeps == [2] * 9 + [10] + [2] * 9 + [10] + [2] * 2


def test_workers_booking_at_the_same_time_get_distinct_slots(db):
    """Three workers reserve "at once" (nobody has slept yet): the shared row spaces them."""
    org = _paced()
    clock = FakeClock()
    start = clock.now()
    slots = [(throttle_reserve(organisation_id=org.pk, clock=clock) - start).total_seconds() for _ in range(12)]
    assert slots == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 28, 30]
    assert SmtpThrottle.objects.count() == 1


def test_each_association_has_its_own_pace(db):
    one, two = _paced(), _paced()
    clock = FakeClock()
    assert throttle_reserve(organisation_id=one.pk, clock=clock) == clock.now()
    assert throttle_reserve(organisation_id=two.pk, clock=clock) == clock.now()
    assert throttle_reserve(organisation_id=one.pk, clock=clock) == clock.now() + timedelta(seconds=2)


def test_a_rested_account_starts_a_new_series(db):
    org = _paced(mail_pause_every=3)
    clock = FakeClock()
    start = clock.now()
    for _ in range(2):
        throttle_wait(organisation_id=org.pk, clock=clock)
    clock.advance(3600)
    offsets = []
    for _ in range(4):
        throttle_wait(organisation_id=org.pk, clock=clock)
        offsets.append((clock.now() - start).total_seconds() - 3602)
    assert offsets == [0, 2, 4, 14]  # the count restarted after the rest


def test_no_pacing_means_no_row_and_no_wait(db):
    org = _paced(mail_delay_seconds=0, mail_pause_every=0, mail_pause_seconds=0)
    clock = FakeClock()
    for _ in range(5):
        assert throttle_wait(organisation_id=org.pk, clock=clock) == 0
    assert not SmtpThrottle.objects.exists()


def test_the_outbox_sends_at_the_configured_pace(db):
    org = _paced(mail_pause_every=5, smtp_security="none")
    clock = FakeClock(start=None)
    clock.advance(30)
    with SmtpServer() as server:
        org.smtp_port = server.port
        org.save()
        for n in range(7):
            message_queue(organisation=org, sender_email="f@tilleuls.example", recipients=["a@example.org"],
                          subject=f"n{n}", body="x")
        outbox_run(OutgoingMessage.objects.all(), clock=clock)
    assert len(server.received) == 7
    assert clock.sleeps == [2, 2, 2, 2, 10, 2]
    sent = list(OutgoingMessage.objects.order_by("pk").values_list("sent_at", flat=True))
    gaps = [(b - a).total_seconds() for a, b in zip(sent, sent[1:])]
    assert gaps == [2, 2, 2, 2, 10, 2]
