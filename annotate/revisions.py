"""Which revision a save writes, so that nothing typed is lost, no one's own saves conflict, and history stays bounded.

Every save of the editor carries its base (the version the page last saw), its editor id (`client`: one per browser
tab, kept across reloads of that tab) and `seq` (a number that grows with every save sent from that tab, across its
pages). Against the stored example, a save is:

- CURRENT: its base is the stored version, or it carries exactly the stored text of the user's draft;
- OWN_LINE: everything written since its base came from this same editor (an earlier save of this page still in
  flight, the beacon of the tab's previous page that landed after this page loaded), and this save is the later one;
- SUPERSEDED: as OWN_LINE, but this editor already stored a later save (the previous page's beacon landing after
  this page's first save): its text is kept aside as a late save, the current text stays;
- CONFLICT: someone else wrote since its base (another tab with different text, a reviewer's edit): its text is kept
  aside as a conflict copy and the current text stays until the person chooses.

Coalescing: an autosave that follows an autosave of the same author and editor, in the example's line of current
texts, updates that revision in place while it is younger than AUTOSAVE_COALESCE, or at any age once the example
holds MAX_AUTOSAVE_REVISIONS autosaves. Explicit saves, submits, reviewers' edits and imports are always new rows,
and an autosave after them starts a new one, so the text before a submit stays as it was. In a conflict, the first
copy an editor leaves on a base is kept as it was; its later autosaves on that base (typing on in the open conflict)
update one further copy in the same way.
"""

import enum
from datetime import datetime, timedelta

from django.db.models import Q

from .models import Example, Revision

AUTOSAVE_COALESCE = timedelta(minutes=5)
MAX_AUTOSAVE_REVISIONS = 50

Reason = Revision.Reason


class Standing(enum.Enum):
    CURRENT = "current"
    OWN_LINE = "own line"
    SUPERSEDED = "superseded"
    CONFLICT = "conflict"


def save_standing(current: Example, *, user, base: int, client: str, seq: int | None, already_stored: bool) -> Standing:
    """How a save with this base, editor and sequence number stands against the locked, stored example.

    Two queries at most, on the example's own revisions (index annotate_revision_latest).
    """
    if base == current.version:
        return Standing.CURRENT
    line = Revision.objects.filter(example=current).current_line()
    if client and seq is not None and 0 < base < current.version:
        latest = line.order_by("-id").values("author_id", "client", "seq", "example_version").first()
        # The latest text of the line is this editor's and no version was made without a revision after it (a
        # submit's move to review does that); nothing since the base was written by anyone else.
        own = (
            latest is not None
            and latest["example_version"] == current.version
            and (latest["author_id"], latest["client"]) == (user.pk, client)
            and not line.filter(example_version__gt=base).filter(~Q(author=user) | ~Q(client=client)).exists()
        )
        if own:
            if latest["seq"] is not None and seq <= latest["seq"]:
                return Standing.CURRENT if already_stored else Standing.SUPERSEDED
            return Standing.OWN_LINE
    return Standing.CURRENT if already_stored else Standing.CONFLICT


def revision_write(
    current: Example,
    *,
    user,
    text: str,
    kind: str,
    reason: str,
    client: str,
    seq: int | None,
    now: datetime,
    reasoning: str = "",
) -> Revision:
    """The revision of the example's new current text and reasoning (`current` already holds its new version): the
    editor's last autosave updated in place when this autosave coalesces with it, else a new row."""
    autosave = reason == Reason.AUTOSAVE and bool(client)
    if autosave:
        latest = Revision.objects.filter(example=current).current_line().order_by("-id").first()
        coalesces = (
            latest is not None
            and latest.replaceable
            and latest.reason == Reason.AUTOSAVE
            and (latest.author_id, latest.client) == (user.pk, client)
            and (
                latest.created_at > now - AUTOSAVE_COALESCE
                or Revision.objects.filter(example=current, reason=Reason.AUTOSAVE).count() >= MAX_AUTOSAVE_REVISIONS
            )
        )
        if coalesces:
            return _update(latest, text=text, kind=kind, example_version=current.version, seq=seq, reasoning=reasoning)
    return Revision.objects.create(
        example=current,
        text=text,
        reasoning=reasoning,
        kind=kind,
        author=user,
        reason=reason,
        example_version=current.version,
        client=client,
        seq=seq,
        replaceable=autosave,
    )


def copy_keep(
    current: Example,
    *,
    user,
    text: str,
    kind: str,
    reason: str,
    aside: str,
    base: int,
    client: str,
    seq: int | None,
    now: datetime,
    reasoning: str = "",
) -> Revision | None:
    """Keep a text that does not become current (`aside`: CONFLICT or LATE) as a revision on its base; None when it
    is exactly the current text (nothing would be lost). Sent again unchanged, it is not stored twice."""
    if text == current.completion and kind == current.kind and reasoning == current.reasoning:
        return None
    base = min(max(base, 1), current.version)
    autosave = reason == Reason.AUTOSAVE and bool(client)
    last = None
    if client:
        mine = Revision.objects.filter(example=current, reason=aside, author=user, client=client, example_version=base)
        last = mine.order_by("-id").first()
    if last is not None:
        if (last.text, last.kind, last.reasoning) == (text, kind, reasoning):
            return last
        if autosave and last.replaceable and last.created_at > now - AUTOSAVE_COALESCE:
            return _update(last, text=text, kind=kind, example_version=base, seq=seq, reasoning=reasoning)
    return Revision.objects.create(
        example=current,
        text=text,
        reasoning=reasoning,
        kind=kind,
        author=user,
        reason=aside,
        example_version=base,
        client=client,
        seq=seq,
        # The first copy an editor leaves on a base is the text it had when the conflict appeared: kept as it was.
        replaceable=autosave and last is not None,
    )


def _update(
    revision: Revision, *, text: str, kind: str, example_version: int, seq: int | None, reasoning: str
) -> Revision:
    Revision.objects.filter(pk=revision.pk).update(
        text=text, kind=kind, example_version=example_version, seq=seq, reasoning=reasoning
    )
    revision.text, revision.kind, revision.example_version, revision.seq = text, kind, example_version, seq
    revision.reasoning = reasoning
    return revision
