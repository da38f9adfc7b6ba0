"""System checks for a production deployment (``manage.py check --deploy``).

Django's own deploy checks cover HTTPS, cookies and HSTS. A missing or development secret
(SECRET_KEY, ENCRYPTION_KEY) stops the start itself with DEBUG off (config/fail_closed.py); a set
but malformed ENCRYPTION_KEY is an error here. Demo logins: demo/checks.py.
"""
import base64
import binascii

from django.conf import settings
from django.core.checks import Error, Tags, register

def _is_fernet_key(key: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(key.encode())) == 32
    except (binascii.Error, ValueError):
        return False


@register(Tags.security)
def check_encryption_key_format(app_configs, **kwargs):
    """An ENCRYPTION_KEY that is set but malformed breaks every SMTP password: always an error."""
    key = getattr(settings, "ENCRYPTION_KEY", "")
    if key and not _is_fernet_key(key):
        return [Error(
            "ENCRYPTION_KEY n'est pas une clé Fernet valide (32 octets en base64 « url-safe »).",
            hint='Générez-en une : python -c "from cryptography.fernet import Fernet; '
                 'print(Fernet.generate_key().decode())"',
            id="sejour.E001",
        )]
    return []
