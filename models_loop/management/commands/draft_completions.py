from models_loop.models import ModelRun

from ._model_run import ModelRunCommand


class Command(ModelRunCommand):
    help = "Ask the model for a draft completion of each new example of a task that has no text and nobody holds."
    kind = ModelRun.Kind.DRAFT
    what = "drafts"
    counts = ("drafted", "taken", "unusable")
