from models_loop.models import ModelRun

from ._model_run import ModelRunCommand


class Command(ModelRunCommand):
    help = "Ask the model to score (1-5, with a reason) each submitted example whose current text is not judged yet."
    kind = ModelRun.Kind.JUDGE
    what = "judgements"
    counts = ("judged", "junk")
