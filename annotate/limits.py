"""How much text one example may hold, the same for every way text comes in.

Imports (importing.py), the annotator's editor (save, feedback, submit, the chat turns it lets them edit), "Write a
new example" and the reviewer's edit all refuse text over these limits with a message that names the field and the
limit, and then store nothing. The checks here are linear in the text and in the number of turns.
"""

import re

from django.core.exceptions import ValidationError

MAX_FIELD_CHARS = 100_000  # the longest text a field (a prompt field, a completion, a chat message) may hold
MAX_TURNS = 50  # prior chat turns an example may be given in the editor (one that already holds more keeps them)

# PostgreSQL stores neither a NUL nor half of a surrogate pair (in text or in JSON); a browser's form sends neither,
# a script may.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """What keeps `value` from being stored, to follow "The instruction …" ("is … characters; the limit is …");
    None when it may be stored."""
    if len(value) > MAX_FIELD_CHARS:
        return f"is {len(value):,} characters; the limit is {MAX_FIELD_CHARS:,}"
    if match := _UNSTORABLE.search(value):
        what = "a NUL character" if match.group() == "\x00" else "an unpaired surrogate"
        return f"contains {what} (at character {match.start() + 1:,}), which cannot be stored"
    return None


def check_text(value: str, *, label: str, field: str | None = None) -> None:
    """Raise ValidationError ("The completion is 150,000 characters; the limit is 100,000.") when `value` may not be
    stored; keyed by `field` when given, so that a form shows it at that field."""
    if problem := text_problem(value):
        message = f"{label[:1].upper()}{label[1:]} {problem}."
        raise ValidationError({field: message} if field else message)


def check_prompt(
    *, fields: dict[str, str] | None = None, messages: list[dict] | None = None, turns_held: int = 0
) -> None:
    """The prompt fields and the prior chat turns of one example within the limits: at most MAX_TURNS turns (or
    `turns_held`, the number the example already holds, when that is more) and every text within check_text.

    Raise ValidationError naming each field over a limit (keyed by field) or the first turn over one.
    """
    errors = {}
    for name, value in (fields or {}).items():
        if problem := text_problem(value or ""):
            errors[name] = f"The {name} {problem}."
    if errors:
        raise ValidationError(errors)
    if messages is None:
        return
    allowed = max(MAX_TURNS, turns_held)
    if len(messages) > allowed:
        raise ValidationError(f"{len(messages):,} chat turns; an example may hold at most {allowed:,}.")
    for number, message in enumerate(messages, start=1):
        content = message.get("content")
        if isinstance(content, str) and (problem := text_problem(content)):
            raise ValidationError(f"Turn {number} ({message.get('role')}) {problem}.")
