import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pairsmith.settings")

app = Celery("pairsmith")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["pairsmith"])
# The sweep re-sends jobs whose message was lost or whose worker died (run the worker with -B, or a beat process).
app.conf.beat_schedule = {"jobs-sweep": {"task": "pairsmith.jobs_sweep", "schedule": 30.0}}
