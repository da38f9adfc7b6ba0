"""What the outbox tells the apps above it (they connect receivers in their ``services/mailing.py``).

* ``message_sent(sender=OutgoingMessage, message=…)`` — accepted by the SMTP server (for at least
  one address); ``message.related_key`` names the document (billing sets ``Invoice.last_sent_at``).
* ``message_failed(sender=OutgoingMessage, message=…)`` — failed for good (no more retries).
"""
from django.dispatch import Signal

message_sent = Signal()
message_failed = Signal()
