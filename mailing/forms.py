"""Form helpers of the outbox: attachment size rules (warn above 1 MB, refuse above the limit), one-line subjects."""
from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

WARN_BYTES = 1024 * 1024
MAX_BYTES = 10 * 1024 * 1024


def validate_single_line(value: str) -> None:
    """An e-mail subject is one header line: a typed CR or LF (header injection) is refused."""
    if value and ("\r" in value or "\n" in value):
        raise ValidationError(_("L'objet doit tenir sur une seule ligne : retirez les retours à la ligne."),
                              code="line_break")


def max_attachment_bytes() -> int:
    return int(getattr(settings, "MAIL_MAX_ATTACHMENT_BYTES", MAX_BYTES))


def warn_attachment_bytes() -> int:
    return int(getattr(settings, "MAIL_WARN_ATTACHMENT_BYTES", WARN_BYTES))


def check_attachment(uploaded) -> str:
    """Raise ``ValidationError`` above the limit; return a French warning above 1 MB (else "")."""
    if uploaded is None:
        return ""
    if uploaded.size > max_attachment_bytes():
        raise ValidationError(_("La pièce jointe « %(name)s » fait %(size)s : au-delà de %(max)s elle est refusée "
                                "(les serveurs de messagerie la rejetteraient).") % {
            "name": uploaded.name, "size": filesizeformat(uploaded.size), "max": filesizeformat(max_attachment_bytes())})
    if uploaded.size > warn_attachment_bytes():
        return _("La pièce jointe « %(name)s » fait %(size)s : au-delà de 1 Mo, les messages sont lents à recevoir "
                 "et parfois refusés. Préférez un PDF léger.") % {"name": uploaded.name,
                                                                 "size": filesizeformat(uploaded.size)}
    return ""


class AttachmentField(forms.FileField):
    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", gettext_lazy("1 Mo au plus conseillé ; PDF de préférence."))
        super().__init__(**kwargs)

    def widget_attrs(self, widget):
        attrs = super().widget_attrs(widget)
        attrs.update({"data-warn-bytes": warn_attachment_bytes(), "data-max-bytes": max_attachment_bytes(),
                      "class": "mail-attachment"})
        return attrs

    def clean(self, data, initial=None):
        value = super().clean(data, initial)
        check_attachment(value or None)
        return value
