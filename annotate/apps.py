from django.apps import AppConfig


class AnnotateConfig(AppConfig):
    name = "annotate"
    verbose_name = "Annotation"

    def ready(self) -> None:
        from . import scans, template_versions  # noqa: F401  (register the scan's and the move's tasks and job types)
