"""Celery application. Tasks are thin wrappers that call services and report to a Job row."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("sejour")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
