"""Bounds on what one job may consume: a memory ceiling for work on uploaded files.

``memory_limit(extra)`` lowers the soft address-space limit (``RLIMIT_AS``) of the current process
to its present size plus ``extra`` bytes for the duration of the block, then restores it: a hostile
file that slips past the checks raises ``MemoryError`` in the job instead of swelling the worker.
A no-op where ``resource`` or ``/proc`` is missing (non-Linux) or when ``extra`` is 0.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

from django.utils.translation import gettext as _


def _address_space_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def memory_limit(extra_bytes: int):
    try:
        import resource
    except ImportError:  # pragma: no cover - not Linux
        yield
        return
    current = _address_space_bytes()
    if not extra_bytes or current is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    ceiling = current + extra_bytes
    if hard != resource.RLIM_INFINITY:
        ceiling = min(ceiling, hard)
    if soft != resource.RLIM_INFINITY:
        ceiling = min(ceiling, soft)
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def memory_refusal() -> str:
    return _("Traitement interrompu : le fichier demande plus de mémoire que la limite permise "
             "(IMPORT_JOB_MEMORY_BYTES). Découpez-le en plusieurs fichiers plus petits.")
