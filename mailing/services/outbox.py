"""The outbox: queue messages, then send them one by one with the shared throttle, log every
attempt, retry temporary failures with back-off, and resume after a crash without sending twice.

How a worker handles one message (each arrow is its own committed write, never inside the SMTP
conversation's transaction):

1. it books a slot of the association's SMTP account (``throttle_wait``) and sleeps until it;
2. it *claims* the oldest due message: ``queued``/``retry`` → ``sending`` with its worker token
   (``select_for_update(skip_locked=True)`` on PostgreSQL, a compare-and-set UPDATE everywhere);
3. MAIL FROM and RCPT TO; then, just before DATA, it records ``data_started_at`` — again by
   compare-and-set on its token: if someone recovered the message meanwhile it does not send;
4. DATA; on the server's 250 it marks the message ``sent`` (or ``retry`` / ``failed``) and writes
   the ``MessageAttempt`` row.

Recovery (``outbox_recover``) of a message left ``sending`` by a dead worker:

* ``data_started_at`` empty → nothing reached the server: back to the queue, sent later once;
* ``data_started_at`` set → the worker died between DATA and the 250/commit: the message may or
  may not have left. It becomes ``uncertain`` and is **never resent automatically**; the campaign
  report lists it so that a person checks (recipient, "sent items" of the account) and then
  resends it or marks it sent. The window is the DATA transfer plus one commit.

Errors at connect / TLS / AUTH concern the account, not the message: the run stops (the message
goes back to the queue with the explanation logged); ``outbox_run`` retries the connection with
back-off and then gives up with the explanation, leaving the rest queued for a re-run.

Credentials refused (AUTH 530/534/535, Office 365 550 5.7.30, OAuth2 token refused — every
permanent error at the AUTH or token step) *block* the association's sending
(``Organisation.smtp_blocked_at``): its messages stay queued, no worker tries them again — a
failed login every minute gets the mailbox locked — until an administrator changes the SMTP
settings or the SMTP test succeeds.
"""
from __future__ import annotations

import logging
import mimetypes
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, make_msgid
from typing import Callable, Iterable

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Count, Min, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from structures.models import Organisation

from ..models import MailCampaign, MessageAttempt, OutgoingMessage
from ..signals import message_failed, message_sent
from .documents import DocumentUnavailable, document_attachment
from .explain import SendError
from .smtp import SmtpConnection, SmtpSettings, refusal_details
from .throttle import SystemClock, lock_for_write, throttle_next_slot, throttle_wait

logger = logging.getLogger(__name__)
Status = OutgoingMessage.Status
Outcome = MessageAttempt.Outcome

# Plain 7-bit MIME (quoted-printable / base64): accepted by every server, with or without 8BITMIME.
POLICY = SMTP_POLICY.clone(cte_type="7bit")
UTF8_POLICY = SMTP_POLICY.clone(utf8=True)


def retry_delays() -> list[int]:
    """Seconds before the 2nd, 3rd… attempt of a temporary failure; then the message is given up."""
    return list(getattr(settings, "MAIL_RETRY_DELAYS", (60, 300, 900)))


def max_attempts() -> int:
    return len(retry_delays()) + 1


def sending_lease() -> timedelta:
    """A message ``sending`` for longer than this belongs to a dead worker (periodic recovery)."""
    return timedelta(seconds=getattr(settings, "MAIL_SENDING_LEASE_SECONDS", 900))


def new_worker_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# --- Queueing ----------------------------------------------------------------------------------
def _domain(address: str) -> str:
    return address.rpartition("@")[2] or "localhost"


def make_message_id(sender_email: str) -> str:
    return make_msgid(idstring="sejour", domain=_domain(sender_email))


def message_build(*, organisation, sender_email: str, recipients: Iterable[str], subject: str, body: str,
                  sender_name: str = "", attachments: list | None = None, read_receipt: bool = False,
                  related_key: str = "", related_label: str = "", campaign: MailCampaign | None = None,
                  section=None, user=None, now: datetime | None = None) -> OutgoingMessage:
    """An unsaved queued message (``message_queue`` saves one; campaigns bulk-create many)."""
    recipients = [r.strip() for r in recipients if r and r.strip()]
    if not recipients:
        raise ValueError("Un courriel sans destinataire ne peut pas être mis en file.")
    return OutgoingMessage(
        organisation=organisation, section=section, campaign=campaign, sender_name=sender_name[:200],
        sender_email=sender_email, recipients=recipients, subject=subject[:250].replace("\n", " "), body=body,
        attachments=list(attachments or []), read_receipt=read_receipt, related_key=related_key,
        related_label=related_label[:250], message_id=make_message_id(sender_email), status=Status.QUEUED,
        next_attempt_at=now or timezone.now(), created_by=user if (user and user.is_authenticated) else None,
        created_at=now or timezone.now(),
    )


def message_queue(**kwargs) -> OutgoingMessage:
    message = message_build(**kwargs)
    message.save()
    return message


def messages_queue(messages: list[OutgoingMessage]) -> list[OutgoingMessage]:
    return OutgoingMessage.objects.bulk_create(messages, batch_size=500)


def attachment_store(*, uploaded, folder: str) -> dict:
    """Keep an uploaded file in the default storage; returns the attachment entry."""
    name = default_storage.save(f"mailing/{folder}/{uploaded.name}", uploaded)
    mimetype = getattr(uploaded, "content_type", None) or mimetypes.guess_type(uploaded.name)[0] \
        or "application/octet-stream"
    return {"path": name, "filename": os.path.basename(uploaded.name), "mimetype": mimetype, "size": uploaded.size}


# --- MIME ----------------------------------------------------------------------------------------
def _resolve_attachment(entry: dict):
    from .documents import Attachment

    if entry.get("document"):
        return document_attachment(entry["document"])
    try:
        with default_storage.open(entry["path"], "rb") as handle:
            content = handle.read()
    except OSError as exc:
        raise DocumentUnavailable(_("Pièce jointe introuvable : %(name)s") % {"name": entry.get("filename")}) from exc
    return Attachment(entry.get("filename") or os.path.basename(entry["path"]), content,
                      entry.get("mimetype") or "application/octet-stream")


def message_attachments(message: OutgoingMessage) -> list:
    """The message's attachments as bytes (documents rendered if needed, stored files read)."""
    return [_resolve_attachment(entry) for entry in message.attachments]


def message_mime(message: OutgoingMessage, *, now: datetime | None = None, attachments: list | None = None,
                 utf8: bool = False) -> EmailMessage:
    """The MIME message. ``utf8``: addresses with accents sent with SMTPUTF8 (raw UTF-8 headers)."""
    policy = UTF8_POLICY if utf8 else POLICY
    mime = EmailMessage(policy=policy)
    mime["From"] = Address(display_name=message.sender_name, addr_spec=message.sender_email)
    mime["To"] = ", ".join(message.recipients)
    mime["Subject"] = message.subject
    mime["Date"] = format_datetime(timezone.localtime(now or timezone.now()))
    mime["Message-ID"] = message.message_id
    if message.read_receipt:
        mime["Disposition-Notification-To"] = message.sender_email
    mime["X-Mailer"] = "Sejour"
    mime.set_content(message.body)
    for attachment in (attachments if attachments is not None else message_attachments(message)):
        maintype, _sep, subtype = (attachment.mimetype or "application/octet-stream").partition("/")
        mime.add_attachment(attachment.content, maintype=maintype, subtype=subtype or "octet-stream",
                            filename=attachment.filename)
    return mime


def message_bytes(message: OutgoingMessage, *, now: datetime | None = None, attachments: list | None = None,
                  utf8: bool = False) -> bytes:
    return message_mime(message, now=now, attachments=attachments, utf8=utf8).as_bytes(
        policy=UTF8_POLICY if utf8 else POLICY)


# --- Connections -----------------------------------------------------------------------------------
class ConnectionPool:
    """Open SMTP connections of a run, one per association (reused between messages)."""

    IDLE_CHECK_SECONDS = 5

    def __init__(self, factory: Callable[[SmtpSettings], SmtpConnection] | None = None):
        self.factory = factory or (lambda s: SmtpConnection(s))
        self.connections: dict[int, tuple[SmtpConnection, float]] = {}

    def get(self, organisation) -> SmtpConnection:
        smtp_settings = SmtpSettings.from_organisation(organisation)
        per_connection = getattr(settings, "MAIL_MESSAGES_PER_CONNECTION", 100)
        held = self.connections.get(organisation.pk)
        if held:
            conn, last_used = held
            stale = (conn.settings.account != smtp_settings.account or conn.smtp is None
                     or conn.sent_count >= per_connection
                     or (time.monotonic() - last_used > self.IDLE_CHECK_SECONDS and not conn.alive()))
            if not stale:
                return conn
            conn.close()
            del self.connections[organisation.pk]
        conn = self.factory(smtp_settings)
        conn.open()
        self.connections[organisation.pk] = (conn, time.monotonic())
        return conn

    def used(self, organisation_id: int) -> None:
        held = self.connections.get(organisation_id)
        if held:
            self.connections[organisation_id] = (held[0], time.monotonic())

    def close_all(self) -> None:
        for conn, _last in self.connections.values():
            conn.close()
        self.connections.clear()


# --- Claim, deliver, record -------------------------------------------------------------------------
@dataclass
class RunResult:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    uncertain: int = 0
    requeued: int = 0
    aborted: SendError | None = None
    message_ids: list[int] = field(default_factory=list)
    # Set when the run stopped rather than wait longer than ``max_wait``: when to come back.
    resume_at: datetime | None = None

    @property
    def processed(self) -> int:
        return self.sent + self.failed + self.retried


def _due(queryset: QuerySet, now: datetime) -> QuerySet:
    return queryset.filter(status__in=OutgoingMessage.CLAIMABLE, next_attempt_at__lte=now,
                           organisation__smtp_blocked_at__isnull=True)


# --- Credentials refused: the association's sending is blocked --------------------------------------
def is_credentials_refusal(error: SendError) -> bool:
    """A permanent failure to log in: trying again with the same settings cannot succeed (and
    repeated failed logins get the account locked)."""
    return error.step in ("auth", "token") and not error.temporary


def smtp_block(*, organisation_id: int, error: SendError, now: datetime | None = None) -> str:
    """Stop every sending of the association until its SMTP settings change or the test succeeds.
    Returns the reason shown on the campaign, the home page and the messages."""
    if error.code in (530, 534, 535, 550) or error.step == "token":
        reason = _("Identifiants refusés : %(explanation)s") % {"explanation": error.explanation}
    else:
        reason = error.explanation
    reason = _("%(reason)s L'envoi est suspendu pour toute l'association (les messages restent en file) jusqu'à "
               "ce qu'un administrateur de l'association corrige les paramètres SMTP ou réussisse le test du "
               "serveur.") % {"reason": reason}
    Organisation.objects.filter(pk=organisation_id).update(smtp_blocked_at=now or timezone.now(),
                                                          smtp_blocked_reason=reason)
    return reason


def smtp_unblock(*, organisation_id: int) -> None:
    Organisation.objects.filter(pk=organisation_id).update(smtp_blocked_at=None, smtp_blocked_reason="")


def _claim(queryset: QuerySet, *, organisation_id: int, worker: str, clock) -> OutgoingMessage | None:
    """The oldest due message of ``queryset`` for this association, now ``sending`` for ``worker``."""
    for _try in range(5):
        now = clock.now()
        with transaction.atomic():
            candidates = _due(queryset, now).filter(organisation_id=organisation_id).order_by("next_attempt_at", "pk")
            if db_connection.features.has_select_for_update_skip_locked:
                candidates = candidates.select_for_update(skip_locked=True, of=("self",))
            else:
                lock_for_write(OutgoingMessage.objects.filter(pk=0), "attempts")  # SQLite: take the write lock
            pk = candidates.values_list("pk", flat=True).first()
            if pk is None:
                return None
            claimed = OutgoingMessage.objects.filter(pk=pk, status__in=OutgoingMessage.CLAIMABLE).update(
                status=Status.SENDING, claimed_by=worker, claimed_at=now, data_started_at=None)
        if claimed:
            return OutgoingMessage.objects.select_related("organisation").get(pk=pk)
    return None


def _mine(message: OutgoingMessage, worker: str) -> QuerySet:
    return OutgoingMessage.objects.filter(pk=message.pk, claimed_by=worker,
                                          status__in=(Status.SENDING, Status.UNCERTAIN))


def _record(message: OutgoingMessage, *, worker: str, started: datetime, finished: datetime, outcome: str,
            status: str, step: str = "", code: int | None = None, reply: str = "", explanation: str = "",
            refused: dict | None = None, next_attempt_at: datetime | None = None, sent_at: datetime | None = None,
            count_attempt: bool = True) -> bool:
    """Write the outcome of an attempt (if the worker still owns the message) and its log row."""
    values = {"status": status, "last_attempt_at": finished, "last_code": code, "last_reply": reply[:2000],
              "explanation": explanation, "claimed_by": "" if status != Status.SENDING else worker}
    if count_attempt:
        values["attempts"] = message.attempts + 1
    if refused is not None:
        values["refused"] = refused
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    if sent_at is not None:
        values["sent_at"] = sent_at
    with transaction.atomic():
        owned = _mine(message, worker).update(**values)
        MessageAttempt.objects.create(message_id=message.pk, started_at=started, finished_at=finished,
                                      outcome=outcome, step=step, code=code, reply=reply[:2000],
                                      explanation=explanation, refused=refused or {}, worker=worker)
    for key, value in values.items():
        setattr(message, key, value)
    return bool(owned)


def _notify(signal, message: OutgoingMessage) -> None:
    for receiver, response in signal.send_robust(sender=OutgoingMessage, message=message):
        if isinstance(response, Exception):
            logger.error("mailing receiver %s failed for message %s: %s", receiver, message.pk, response)


def message_deliver(message: OutgoingMessage, *, pool: ConnectionPool, worker: str, clock) -> str:
    """Send one claimed message; returns its new status. Raises ``SendError`` for account-level
    failures (connect / TLS / AUTH) after putting the message back in the queue."""
    started = clock.now()
    try:
        attachments = message_attachments(message)  # fails here, before any SMTP
    except (DocumentUnavailable, OSError, ValueError) as exc:
        explanation = _("La pièce jointe n'a pas pu être préparée : %(error)s") % {"error": exc}
        _record(message, worker=worker, started=started, finished=clock.now(), outcome=Outcome.PERMANENT,
                status=Status.FAILED, step="prepare", explanation=explanation)
        _notify(message_failed, message)
        return Status.FAILED
    try:
        conn = pool.get(message.organisation)
    except SendError as error:
        if is_credentials_refusal(error):
            error.blocked = True
            error.explanation = smtp_block(organisation_id=message.organisation_id, error=error, now=clock.now())
        _record(message, worker=worker, started=started, finished=clock.now(), outcome=Outcome.CONNECTION,
                status=Status.QUEUED, step=error.step, code=error.code, reply=error.reply,
                explanation=error.explanation, count_attempt=False)
        raise

    def before_data() -> bool:
        return bool(_mine(message, worker).filter(status=Status.SENDING, data_started_at__isnull=True)
                    .update(data_started_at=clock.now()))

    try:
        refused, (code, reply) = conn.send(
            sender=message.sender_email, recipients=message.recipients, before_data=before_data,
            data=lambda utf8: message_bytes(message, now=started, attachments=attachments, utf8=utf8))
    except SendError as error:
        pool.used(message.organisation_id)
        if error.step == "prepare":  # lost the claim before DATA: someone else owns it now
            return Status.QUEUED
        attempts = message.attempts + 1
        delays = retry_delays()
        if error.temporary and attempts <= len(delays):
            status = Status.RETRY
            next_at = clock.now() + timedelta(seconds=delays[attempts - 1])
            explanation = _("%(explanation)s (tentative %(n)s sur %(max)s, prochain essai à %(time)s)") % {
                "explanation": error.explanation, "n": attempts, "max": max_attempts(),
                "time": timezone.localtime(next_at).strftime("%H:%M")}
        else:
            status, next_at = Status.FAILED, None
            explanation = error.explanation
            if error.temporary:
                explanation = _("%(explanation)s — abandon après %(n)s tentatives.") % {
                    "explanation": error.explanation, "n": attempts}
        _record(message, worker=worker, started=started, finished=clock.now(),
                outcome=Outcome.TEMPORARY if status == Status.RETRY else Outcome.PERMANENT, status=status,
                step=error.step,
                code=error.code, reply=error.reply, explanation=explanation,
                refused=error.refused or {}, next_attempt_at=next_at)
        if status == Status.FAILED:
            _notify(message_failed, message)
        return status
    pool.used(message.organisation_id)
    finished = clock.now()
    details = refusal_details(refused, message.sender_email)
    if details:
        explanation = _("Envoyé, mais refusé pour %(list)s") % {
            "list": " ; ".join(f"{addr} : {d['explanation']}" for addr, d in details.items())}
    else:
        explanation = _("Accepté par le serveur SMTP.")
    _record(message, worker=worker, started=started, finished=finished,
            outcome=Outcome.PARTIAL if details else Outcome.SENT, status=Status.SENT, step="data", code=code,
            reply=reply, explanation=explanation, refused=details, sent_at=finished)
    _notify(message_sent, message)
    return Status.SENT


def outbox_process(queryset: QuerySet | None = None, *, clock=None, worker: str | None = None,
                   pool: ConnectionPool | None = None, result: RunResult | None = None,
                   progress: Callable[[RunResult], None] | None = None, limit: int | None = None,
                   max_wait: float | None = None) -> RunResult:
    """Send every message of ``queryset`` that is due now, one at a time, with the throttle.
    Stops at the first account-level failure (``result.aborted``). ``max_wait``: never sleep longer
    than this for the throttle — stop instead, with ``result.resume_at`` set to the free slot."""
    queryset = queryset if queryset is not None else OutgoingMessage.objects.all()
    clock = clock or SystemClock()
    worker = worker or new_worker_id()
    own_pool = pool is None
    pool = pool or ConnectionPool()
    result = result or RunResult()
    handled = 0
    try:
        while limit is None or handled < limit:
            head = _due(queryset, clock.now()).order_by("next_attempt_at", "pk").values_list(
                "organisation_id", flat=True).first()
            if head is None:
                break
            if max_wait is not None:
                slot = throttle_next_slot(organisation_id=head, clock=clock)
                if (slot - clock.now()).total_seconds() > max_wait:
                    result.resume_at = slot
                    break
            throttle_wait(organisation_id=head, clock=clock)
            message = _claim(queryset, organisation_id=head, worker=worker, clock=clock)
            if message is None:  # taken by another worker meanwhile
                clock.sleep(0.05)
                continue
            handled += 1
            try:
                status = message_deliver(message, pool=pool, worker=worker, clock=clock)
            except SendError as error:
                result.aborted = error
                break
            result.message_ids.append(message.pk)
            if status == Status.SENT:
                result.sent += 1
            elif status == Status.FAILED:
                result.failed += 1
            elif status == Status.RETRY:
                result.retried += 1
            if progress:
                progress(result)
    finally:
        if own_pool:
            pool.close_all()
    return result


# --- Recovery and runs -------------------------------------------------------------------------------
def outbox_recover(queryset: QuerySet | None = None, *, claimed_before: datetime | None = None, clock=None) -> dict:
    """Messages left ``sending`` by a worker that is gone (claimed before ``claimed_before``,
    default: older than the lease): requeue those whose DATA never started, mark the others
    ``uncertain``. Safe against a live owner: its own writes are compare-and-set on its token."""
    clock = clock or SystemClock()
    now = clock.now()
    limit = claimed_before or (now - sending_lease())
    queryset = queryset if queryset is not None else OutgoingMessage.objects.all()
    stuck = list(queryset.filter(status=Status.SENDING, claimed_at__lte=limit)
                 .values("pk", "claimed_at", "claimed_by", "data_started_at"))
    counts = {"requeued": 0, "uncertain": 0}
    for row in stuck:
        base = OutgoingMessage.objects.filter(pk=row["pk"], status=Status.SENDING, claimed_by=row["claimed_by"],
                                              claimed_at=row["claimed_at"])
        with transaction.atomic():
            if row["data_started_at"] is None:
                explanation = _("Envoi interrompu avant la transmission (arrêt du processus d'envoi) : rien n'est "
                                "parti, le message est remis en file.")
                done = base.filter(data_started_at__isnull=True).update(
                    status=Status.QUEUED, claimed_by="", next_attempt_at=now, explanation=explanation)
                outcome, key = Outcome.INTERRUPTED, "requeued"
            else:
                explanation = _("Envoi interrompu pendant la transmission au serveur SMTP (arrêt du processus "
                                "d'envoi) : le message est peut-être parti. Vérifiez auprès du destinataire ou dans "
                                "les éléments envoyés du compte avant de le renvoyer ; il ne sera pas renvoyé "
                                "automatiquement.")
                done = base.update(status=Status.UNCERTAIN, explanation=explanation)
                outcome, key = Outcome.UNCERTAIN, "uncertain"
            if done:
                MessageAttempt.objects.create(message_id=row["pk"], started_at=row["claimed_at"], finished_at=now,
                                              outcome=outcome, explanation=explanation, worker=row["claimed_by"])
                counts[key] += 1
    return counts


def outbox_run(queryset: QuerySet, *, clock=None, wait: bool = True, recover_now: bool = True,
               connection_factory: Callable | None = None, progress: Callable[[RunResult], None] | None = None,
               worker: str | None = None, max_wait: float | None = None) -> RunResult:
    """Send everything pending in ``queryset`` and, if ``wait``, stay until each message is sent or
    given up (sleeping until retries are due). ``recover_now``: messages of the selection left
    ``sending`` by an earlier, interrupted run are recovered first (a re-run after a crash).

    ``max_wait`` (seconds): the run never sleeps longer than this for the throttle or a retry; it
    returns instead with ``result.resume_at`` (the caller schedules its next batch for then, so a
    paced campaign does not hold a worker process while it waits)."""
    clock = clock or SystemClock()
    worker = worker or new_worker_id()
    pool = ConnectionPool(connection_factory)
    result = RunResult()
    if recover_now:
        counts = outbox_recover(queryset, claimed_before=clock.now(), clock=clock)
        result.requeued, result.uncertain = counts["requeued"], counts["uncertain"]
    delays = retry_delays()
    account_failures = 0
    try:
        while True:
            sent_before = result.sent
            outbox_process(queryset, clock=clock, worker=worker, pool=pool, result=result, progress=progress,
                           max_wait=max_wait)
            if result.resume_at is not None:
                break
            if result.sent > sent_before:
                account_failures = 0
            if result.aborted is not None:
                if wait and result.aborted.temporary and account_failures < len(delays):
                    clock.sleep(delays[account_failures])
                    account_failures += 1
                    result.aborted = None
                    continue
                break
            # Messages of a blocked association wait for a person, not for this run.
            pending = queryset.filter(status__in=OutgoingMessage.PENDING).exclude(
                status__in=OutgoingMessage.CLAIMABLE, organisation__smtp_blocked_at__isnull=False)
            if not wait or not pending.exists():
                break
            if pending.filter(status=Status.SENDING).exists():  # held by another worker
                outbox_recover(queryset, clock=clock)
                if max_wait is not None:  # come back later rather than watch it
                    result.resume_at = clock.now() + timedelta(seconds=5)
                    break
                clock.sleep(1)
                continue
            next_due = pending.aggregate(at=Min("next_attempt_at"))["at"]
            pause = max(0.0, (next_due - clock.now()).total_seconds()) if next_due else 1
            if max_wait is not None and pause > max_wait:
                result.resume_at = clock.now() + timedelta(seconds=pause)
                break
            clock.sleep(pause)
    finally:
        pool.close_all()
    result.uncertain = queryset.filter(status=Status.UNCERTAIN).count()
    return result


# --- Counts and manual decisions ------------------------------------------------------------------
def messages_counts(queryset: QuerySet) -> dict:
    """``{"sent", "failed", "retry", "queued", "sending", "uncertain", "cancelled", "total", "remaining"}``."""
    counts = {status: 0 for status in Status.values}
    for row in queryset.values("status").annotate(n=Count("pk")).order_by():
        counts[row["status"]] = row["n"]
    counts["total"] = sum(counts[s] for s in Status.values)
    counts["remaining"] = counts["queued"] + counts["sending"] + counts["retry"]
    counts["partial"] = queryset.filter(status=Status.SENT).exclude(refused={}).count() if counts["sent"] else 0
    return counts


def campaign_counts(campaign: MailCampaign) -> dict:
    return messages_counts(campaign.messages.all())


def message_requeue(*, message: OutgoingMessage, user=None) -> OutgoingMessage:
    """A person asks to send a failed (or checked uncertain) message again."""
    if message.status not in (Status.FAILED, Status.UNCERTAIN, Status.CANCELLED):
        raise ValueError(_("Seul un message en échec, annulé ou à vérifier peut être renvoyé."))
    now = timezone.now()
    explanation = _("Renvoi demandé par %(user)s.") % {"user": user or "?"}
    with transaction.atomic():
        OutgoingMessage.objects.filter(pk=message.pk, status=message.status).update(
            status=Status.QUEUED, attempts=0, next_attempt_at=now, claimed_by="", data_started_at=None,
            explanation=explanation)
        MessageAttempt.objects.create(message=message, started_at=now, finished_at=now, outcome=Outcome.MANUAL,
                                      explanation=explanation)
    message.refresh_from_db()
    return message


def message_mark_sent(*, message: OutgoingMessage, user=None) -> OutgoingMessage:
    """A person checked that an uncertain message did arrive."""
    if message.status != Status.UNCERTAIN:
        raise ValueError(_("Seul un message à vérifier peut être marqué comme envoyé."))
    now = timezone.now()
    explanation = _("Marqué comme envoyé par %(user)s après vérification.") % {"user": user or "?"}
    with transaction.atomic():
        OutgoingMessage.objects.filter(pk=message.pk, status=Status.UNCERTAIN).update(
            status=Status.SENT, sent_at=message.data_started_at or now, explanation=explanation)
        MessageAttempt.objects.create(message=message, started_at=now, finished_at=now, outcome=Outcome.MANUAL,
                                      explanation=explanation)
    message.refresh_from_db()
    _notify(message_sent, message)
    return message


def messages_cancel(queryset: QuerySet, *, user=None) -> int:
    """Cancel what has not been claimed yet (queued or waiting for a retry)."""
    return queryset.filter(status__in=OutgoingMessage.CLAIMABLE).update(
        status=Status.CANCELLED, explanation=_("Annulé par %(user)s.") % {"user": user or "?"})


__all__ = [
    "ConnectionPool", "RunResult", "message_build", "message_queue", "messages_queue", "message_bytes",
    "message_mime", "outbox_process", "outbox_recover", "outbox_run", "messages_counts", "campaign_counts",
    "message_requeue", "message_mark_sent", "messages_cancel", "attachment_store", "smtp_block", "smtp_unblock",
    "is_credentials_refusal",
]
