"""Putting a service's ``ValidationError`` on the form fields it names (views stay thin)."""
from __future__ import annotations

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError


def attach_errors(exc: ValidationError, *forms_in_order: forms.Form, rename: dict | None = None) -> None:
    """Attach a service's ``ValidationError`` to the first form having the named field.

    Keys no form knows (or ``__all__``) become errors of the first form, shown above its fields.
    ``rename`` maps a service's field name to the form's (``entry_date`` → ``transfer_date``).
    """
    rename = rename or {}
    first = forms_in_order[0]
    if not hasattr(exc, "error_dict"):
        first.add_error(None, exc.messages)
        return
    for key, messages in exc.message_dict.items():
        key = rename.get(key, key)
        target = next((f for f in forms_in_order if key != NON_FIELD_ERRORS and key in f.fields), None)
        if target is None:
            first.add_error(None, messages)
        else:
            target.add_error(key, messages)
