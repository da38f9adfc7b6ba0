"""Encryption of secrets stored in the database (SMTP passwords) with a key from the environment.

``ENCRYPTION_KEY`` is a Fernet key; without it one is derived from ``SECRET_KEY`` (fine for the
embedded default, refused by the deploy check).
"""
import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _fernet() -> Fernet:
    key = settings.ENCRYPTION_KEY
    if not key:
        key = base64.urlsafe_b64encode(hashlib.sha256(settings.SECRET_KEY.encode()).digest()).decode()
    return Fernet(key.encode() if isinstance(key, str) else key)


def encrypt(plain: str) -> str:
    if not plain:
        return ""
    return _fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("Le mot de passe SMTP ne peut pas être déchiffré : ENCRYPTION_KEY a changé ?") from exc
