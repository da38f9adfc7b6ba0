"""Login throttling (django-axes): the client address and the French lockout page.

Failed logins are counted per *identifiant + adresse IP* (AXES_LOCKOUT_PARAMETERS); after
``LOGIN_FAILURE_LIMIT`` failures that pair is refused for ``LOGIN_LOCKOUT_MINUTES`` (HTTP 429), on the
application's login page and on the admin's alike. An administrator unlocks it by deleting the
attempt in the admin (« Tentatives d'accès ») or with ``manage.py axes_reset_username <identifiant>``.
"""
from __future__ import annotations

from django.conf import settings
from django.shortcuts import render


def client_ip(request) -> str | None:
    """Behind the HTTPS reverse proxy (BEHIND_HTTPS_PROXY=1) the client is the last address the proxy
    appended to X-Forwarded-For (earlier entries are whatever the client sent); otherwise REMOTE_ADDR."""
    if settings.SECURE_PROXY_SSL_HEADER:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-1]
    return request.META.get("REMOTE_ADDR")


def lockout_response(request, original_response=None, credentials=None):
    return render(request, "registration/locked_out.html", {
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cooloff_timedelta": settings.AXES_COOLOFF_TIME,
        "lockout_minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60) if settings.AXES_COOLOFF_TIME else 0,
    }, status=429)
