"""Deploy check: no demo data switch and no demo login (known password) in production."""
from django.conf import settings
from django.core.checks import Error, Tags, register
from django.db import DatabaseError


def demo_logins_present() -> list[str]:
    """Logins of the demo seed that still exist with their published password."""
    from django.contrib.auth import get_user_model

    from .services.seed import USERS

    passwords = {login: password for login, password, _superuser, _grants in USERS}
    users = get_user_model().objects.filter(username__in=passwords, is_active=True)
    return sorted(user.username for user in users if user.check_password(passwords[user.username]))


@register(Tags.security, deploy=True)
def check_demo(app_configs, **kwargs):
    messages = []
    if settings.DEMO_ALLOWED:
        messages.append(Error(
            "DEMO_ALLOWED est activé : les données et comptes de démonstration peuvent être créés.",
            hint="Mettez DEMO_ALLOWED=0 en production (c'est la valeur par défaut hors ./dev).",
            id="sejour.E002",
        ))
    try:
        logins = demo_logins_present()
    except DatabaseError:  # no database yet (image build, first start before migrate): nothing to find
        logins = []
    if logins:
        messages.append(Error(
            "Comptes de démonstration présents avec leur mot de passe connu : %s." % ", ".join(logins),
            hint="Supprimez ces comptes ou changez leur mot de passe (administration, « Utilisateurs »).",
            id="sejour.E003",
        ))
    return messages
