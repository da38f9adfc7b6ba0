"""Fail closed: with DEBUG off the app does not start on a development or placeholder secret.

Called at the end of ``config/settings.py``; the refusal is one French line naming what to set
(no traceback), so that a web container, a worker or ``manage.py`` stops at once and says why.
"""
from __future__ import annotations

DEV_SECRET_KEY_PREFIX = "dev-insecure-"
# The placeholders of .env.example (« à changer ») and their variants.
PLACEHOLDER_MARKS = ("a-changer", "achanger", "à-changer", "change-me", "changeme")


def _placeholder(value: str) -> bool:
    lowered = value.lower()
    return any(mark in lowered for mark in PLACEHOLDER_MARKS)


def insecure_secret(*, secret_key: str, encryption_key: str) -> str | None:
    """The French refusal line when a secret is missing, the development one or a placeholder."""
    if not secret_key or secret_key.startswith(DEV_SECRET_KEY_PREFIX) or _placeholder(secret_key):
        return ("Démarrage refusé (DEBUG=0) : définissez SECRET_KEY dans l'environnement, au moins 50 caractères "
                "aléatoires (python -c \"import secrets; print(secrets.token_urlsafe(50))\") ; la clé de "
                "développement et les valeurs « a-changer » sont refusées.")
    if not encryption_key or _placeholder(encryption_key):
        return ("Démarrage refusé (DEBUG=0) : définissez ENCRYPTION_KEY dans l'environnement, une clé Fernet "
                "(python -c \"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())\") "
                "à conserver : elle chiffre les mots de passe SMTP.")
    return None


# Management commands that only read the code (no request served, no secret decrypted): a technician
# or a check may run them in a bare checkout without the production secrets.
CODE_ONLY_COMMANDS = ("makemigrations", "collectstatic")


def _code_only_command(argv: list[str]) -> bool:
    return len(argv) > 1 and argv[0].endswith("manage.py") and argv[1] in CODE_ONLY_COMMANDS


def refuse_insecure_start(*, debug: bool, secret_key: str, encryption_key: str, argv: list[str] | None = None) -> None:
    import sys

    if debug or _code_only_command(sys.argv if argv is None else argv):
        return
    problem = insecure_secret(secret_key=secret_key, encryption_key=encryption_key)
    if problem:
        raise SystemExit(problem)
