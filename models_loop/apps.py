from django.apps import AppConfig


class ModelsLoopConfig(AppConfig):
    name = "models_loop"
    verbose_name = "Model in the loop"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from annotate.models import Revision

        from . import evaluation_job, runs, services  # noqa: F401  (they register their tasks and job types)

        # A submit is noticed through its revision, so that annotate, which works without a model, does not import
        # this app: measuring the draft's edit and queueing the judge happen in services.submission_noted.
        post_save.connect(services.revision_saved, sender=Revision, dispatch_uid="models_loop_submission")
