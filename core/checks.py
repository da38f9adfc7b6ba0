"""System checks for a production deployment (``manage.py check --deploy``).

Django's own deploy checks cover HTTPS, cookies and HSTS; these cover what is ours:
the secret key must not be the development default shipped in ``config/settings.py`` and
``ENCRYPTION_KEY`` (which encrypts the SMTP passwords stored in the database) must be set,
so that rotating ``SECRET_KEY`` does not make those passwords unreadable.
"""
import base64
import binascii

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

DEV_SECRET_KEY_PREFIX = "dev-insecure-"


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


@register(Tags.security, deploy=True)
def check_production_secrets(app_configs, **kwargs):
    if settings.DEBUG:
        return []
    messages = []
    if settings.SECRET_KEY.startswith(DEV_SECRET_KEY_PREFIX):
        messages.append(Warning(
            "SECRET_KEY est la clé de développement fournie avec le code.",
            hint="Définissez SECRET_KEY (au moins 50 caractères aléatoires) dans l'environnement de production.",
            id="sejour.W001",
        ))
    if not getattr(settings, "ENCRYPTION_KEY", ""):
        messages.append(Warning(
            "ENCRYPTION_KEY est vide : les mots de passe SMTP sont chiffrés avec une clé dérivée de SECRET_KEY.",
            hint="Définissez ENCRYPTION_KEY (une clé Fernet) et ne la changez plus : sans elle, les mots de "
                 "passe SMTP enregistrés ne peuvent plus être déchiffrés.",
            id="sejour.W002",
        ))
    return messages
