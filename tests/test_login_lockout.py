"""Login throttling (django-axes): after LOGIN_FAILURE_LIMIT failures a login + IP pair is locked out
(French page, 429) on the application and on the admin; another IP is not; an administrator
unlocks it in the admin."""
import pytest
from django.urls import reverse

from axes.models import AccessAttempt


@pytest.fixture
def axes_on(settings, demo):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    return demo


def _login(client, url, password, ip="10.0.0.1", username="tilleuls"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_app_login_locks_out_after_repeated_failures(client, axes_on):
    url = reverse("login")
    for _ in range(2):
        assert _login(client, url, "faux").status_code == 200  # the form again, wrong password
    response = _login(client, url, "faux")
    assert response.status_code == 429
    assert "Connexion bloquée" in response.content.decode()
    # Even the right password is refused now, from this address…
    response = _login(client, url, "demo")
    assert response.status_code == 429 and "Réessayez dans 30 minutes" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # …but not from another one (lockout per login + IP), nor for another login from the same address.
    assert _login(client, url, "demo", ip="10.0.0.2").status_code == 302
    client.logout()
    assert _login(client, url, "demo", username="verger").status_code == 302


def test_admin_login_is_throttled_and_an_admin_unlocks(client, axes_on):
    admin_login = reverse("admin:login")
    for _ in range(3):
        response = _login(client, admin_login, "faux", username="admin")
    assert response.status_code == 429
    assert _login(client, admin_login, "admin", username="admin").status_code == 429
    # Locked out on the application's page as well for tilleuls after failures there; an admin unlocks.
    for _ in range(3):
        _login(client, reverse("login"), "faux")
    assert _login(client, reverse("login"), "demo").status_code == 429
    attempt = AccessAttempt.objects.get(username="tilleuls")
    admin_client = client.__class__()
    admin_client.post(admin_login, {"username": "admin", "password": "admin"}, REMOTE_ADDR="10.0.0.9")
    changelist = reverse("admin:axes_accessattempt_changelist")
    assert admin_client.get(changelist).status_code == 200
    admin_client.post(changelist, {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"},
                      REMOTE_ADDR="10.0.0.9")
    assert not AccessAttempt.objects.filter(username="tilleuls").exists()
    assert _login(client, reverse("login"), "demo").status_code == 302


def test_client_ip_behind_the_proxy_is_the_address_the_proxy_appended(rf, settings):
    from core.auth import client_ip

    request = rf.get("/", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.7", REMOTE_ADDR="127.0.0.1")
    settings.SECURE_PROXY_SSL_HEADER = None
    assert client_ip(request) == "127.0.0.1"
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert client_ip(request) == "203.0.113.7"
