"""The project's celery app with a private default queue, for worker processes started by the export tests.

Started as `celery -A tests.exports.worker_app worker -Q <queue>` with PAIRSMITH_TEST_QUEUE=<queue>: then the sweep
that the worker sends itself at start (worker_ready), and the jobs that sweep re-sends, go to the queue this worker
consumes, as they go to the default queue in production.
"""

import os

from pairsmith.celery import app

app.conf.task_default_queue = os.environ["PAIRSMITH_TEST_QUEUE"]

__all__ = ["app"]
