from django.apps import AppConfig


class AnnotateConfig(AppConfig):
    name = "annotate"
    verbose_name = "Annotation"

    def ready(self) -> None:
        from . import scans  # noqa: F401  (registers the quality scan's Celery task and its job type)
