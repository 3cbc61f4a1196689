"""Quality warnings as people read them: the check's name (never its code), the message, and the evidence.

Evidence comes from a finding's `detail` (annotate.quality.checks.Finding), whichever keys it holds:
- leak: `field` (a prompt field), `field_span` and `completion_span` ([start, end) character offsets): both texts
  are cut into segments around the span, and the template wraps the marked segment in <mark> (autoescaped, like all
  user text: no HTML is built here). Older findings name the field only (`where`).
- duplicate, near_duplicate, contradiction: `other_uuid`, `other_external_id`; older findings list example ids in
  `examples`. Linked only for a viewer who may open the other example, and only when it is in the same task.
- inconsistent_prefix / inconsistent_signoff: `typical`, `typical_share` (older: `pattern`, `share`).
- short / length_outlier: `typical_words` (older length outliers: quartiles of the length in characters).
Anything absent or malformed is left out: a warning always shows at least its name and message.
"""

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from django.db.models import Q
from django.urls import reverse

from . import quality
from .models import Example, QualityOverride, Role, Task
from .overrides import MARK, OVERRULABLE, check_title, example_text_hash, may_overrule, standing
from .rendering import PROMPT_FIELDS

# Characters of context shown on each side of a marked span, and of the span itself (its middle elided beyond).
CONTEXT_CHARS = 160
SPAN_CHARS = 600
# Other examples linked per warning.
OTHERS_SHOWN = 5
GROUP_CODES = ("duplicate", "near_duplicate", "contradiction")
PATTERN_CODES = {"inconsistent_prefix": "opening", "inconsistent_signoff": "sign-off"}


@dataclass
class Segment:
    text: str
    marked: bool = False


@dataclass
class Evidence:
    field_label: str = ""
    field_segments: list[Segment] = field(default_factory=list)
    completion_segments: list[Segment] = field(default_factory=list)
    others: list[dict] = field(default_factory=list)  # {"name", "url" or None}
    typical: str | None = None  # the typical opening or sign-off ("" : none at all)
    typical_what: str = ""
    typical_share: float | None = None
    typical_length: str = ""

    def __bool__(self) -> bool:
        return bool(
            self.field_label
            or self.completion_segments
            or self.others
            or self.typical is not None
            or self.typical_length
        )


@dataclass
class ShownWarning:
    code: str
    title: str
    message: str
    blocking: bool
    evidence: Evidence
    override: dict | None = None  # the mark: id, by, at (a datetime), note
    earlier: dict | None = None  # an override given on an earlier text of the example (no longer applies)

    @property
    def overruled(self) -> bool:
        return self.override is not None

    @property
    def overrulable(self) -> bool:
        return self.code in OVERRULABLE


def segments(text: str, span) -> list[Segment]:
    """`text` around `span` ([start, end) offsets) as unmarked, marked, unmarked segments, each bounded; [] when the
    span does not fit the text (a finding about an older text, or none)."""
    if not isinstance(text, str) or not isinstance(span, list | tuple) or len(span) != 2:
        return []
    start, end = span
    if not (type(start) is int and type(end) is int and 0 <= start < end <= len(text)):  # not bools, not floats
        return []
    before = text[max(0, start - CONTEXT_CHARS) : start]
    after = text[end : end + CONTEXT_CHARS]
    out = [Segment(("…" if start > CONTEXT_CHARS else "") + before)]
    if end - start <= SPAN_CHARS:
        out.append(Segment(text[start:end], True))
    else:
        half = SPAN_CHARS // 2
        out += [Segment(text[start : start + half], True), Segment(" … "), Segment(text[end - half : end], True)]
    out.append(Segment(after + ("…" if end + CONTEXT_CHARS < len(text) else "")))
    return [s for s in out if s.text]


def _share(value) -> float | None:
    return float(value) if isinstance(value, int | float) and 0 <= value <= 1 else None


def _evidence(warning: dict, fields: dict, completion: str, labels: dict, others: dict) -> Evidence:
    detail = warning.get("detail") if isinstance(warning.get("detail"), dict) else {}
    code = warning.get("code")
    evidence = Evidence()
    if code == "leak":
        name = detail.get("field")
        if name in PROMPT_FIELDS:
            evidence.field_label = labels.get(name) or name.title()
            evidence.field_segments = segments(fields.get(name, ""), detail.get("field_span"))
        elif isinstance(detail.get("where"), str):
            evidence.field_label = detail["where"]
        evidence.completion_segments = segments(completion, detail.get("completion_span"))
    elif code in GROUP_CODES:
        evidence.others = [others[key] for key in _other_keys(detail) if key in others][:OTHERS_SHOWN]
    elif code in PATTERN_CODES:
        typical = detail.get("typical", detail.get("pattern"))
        evidence.typical = typical if isinstance(typical, str) else ""
        evidence.typical_what = PATTERN_CODES[code]
        evidence.typical_share = _share(detail.get("typical_share", detail.get("share")))
    if code in ("short", "length_outlier"):
        words = detail.get("typical_words")
        if isinstance(words, int | float) and words > 0:
            evidence.typical_length = f"about {round(words):,} words"
        elif all(isinstance(detail.get(k), int | float) for k in ("q1", "q3", "median")):
            evidence.typical_length = f"{detail['q1']:,}–{detail['q3']:,} characters (median {detail['median']:,})"
    return evidence


def _other_keys(detail: dict) -> list:
    """The other examples a group finding names: its other_uuid, else the ids it lists."""
    if isinstance(detail.get("other_uuid"), str):
        return [("uuid", detail["other_uuid"])]
    ids = detail.get("examples")
    return [("id", i) for i in ids if isinstance(i, int)] if isinstance(ids, list) else []


def _others(task: Task, example: Example | None, warnings: list[dict], *, may_link: bool) -> dict:
    """(key -> {"name", "url"}) for the other examples the group findings name, looked up in this task only (one
    query): an id or UUID of another task names nothing."""
    uuids, ids = set(), set()
    for warning in warnings:
        if warning.get("code") in GROUP_CODES and isinstance(warning.get("detail"), dict):
            for kind, value in _other_keys(warning["detail"])[: OTHERS_SHOWN + 1]:
                (uuids if kind == "uuid" else ids).add(value)
    if not uuids and not ids:
        return {}
    valid = set()
    for value in uuids:
        try:
            valid.add(str(UUID(value)))
        except ValueError:
            continue
    rows = Example.objects.filter(task=task).filter(Q(uuid__in=valid) | Q(pk__in=ids))
    if example is not None and example.pk:
        rows = rows.exclude(pk=example.pk)
    found = {}
    for pk, uuid, external_id in rows.values_list("pk", "uuid", "external_id")[: 2 * (OTHERS_SHOWN + 1)]:
        entry = {
            "name": external_id or f"{str(uuid)[:8]}…",
            "url": reverse("reviews:example", args=[task.slug, uuid]) if may_link else None,
        }
        found[("uuid", str(uuid))] = found[("id", pk)] = entry
    return found


def _when(value) -> datetime | str:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def shown_warnings(
    warnings: list,
    *,
    task: Task,
    example: Example | None = None,
    fields: dict | None = None,
    completion: str | None = None,
    may_link: bool = False,
    earlier: dict[str, QualityOverride] | None = None,
) -> list[ShownWarning]:
    """Warnings (stored dicts or Findings) as the templates show them: open ones first, in the order given."""
    dicts = [w.as_dict() if isinstance(w, quality.Finding) else w for w in warnings or []]
    dicts = [w for w in dicts if isinstance(w, dict) and isinstance(w.get("code"), str)]
    if example is not None:
        fields = example.prompt_fields() if fields is None else fields
        completion = example.completion if completion is None else completion
        labels = {name: example.template.field_label(name) for name in PROMPT_FIELDS}
    else:
        labels = {}
    others = _others(task, example, dicts, may_link=may_link)
    shown = []
    for warning in dicts:
        mark = warning.get(MARK) if isinstance(warning.get(MARK), dict) else None
        if mark is not None:
            mark = {**mark, "at": _when(mark.get("at"))}
        before = (earlier or {}).get(warning["code"]) if mark is None else None
        shown.append(
            ShownWarning(
                code=warning["code"],
                title=check_title(warning["code"]),
                message=str(warning.get("message", "")),
                blocking=bool(warning.get("blocking")) and mark is None,
                evidence=_evidence(warning, fields or {}, completion or "", labels, others),
                override=mark,
                earlier={"by": getattr(before.created_by, "username", ""), "at": before.created_at} if before else None,
            )
        )
    return sorted(shown, key=lambda w: w.overruled)


def panel(*, user, roles: set[str], task: Task, example: Example) -> dict:
    """The context of templates/annotate/_warnings.html for one example: its warnings, the notes of the overrides
    standing on them, and whether this viewer may mark them not a problem."""
    overrides = standing(example)
    current = example_text_hash(example) if overrides else ""
    notes = {o.pk: o.note for o in overrides}
    earlier = {}
    for o in overrides:  # newest first: the latest override given on another text, per check
        if o.text_hash != current:
            earlier.setdefault(o.code, o)
    warnings = shown_warnings(
        example.warnings,
        task=task,
        example=example,
        may_link=bool(roles.intersection({Role.REVIEWER, Role.LEAD})),
        earlier=earlier,
    )
    for warning in warnings:
        if warning.override is not None:
            warning.override["note"] = notes.get(warning.override.get("id"), "")
            warning.override["undoable"] = Role.LEAD in roles or any(
                o.pk == warning.override.get("id") and o.created_by_id == user.pk for o in overrides
            )
    refusal = may_overrule(user, roles, task, example)
    return {
        "warnings": warnings,
        "open_count": sum(not w.overruled for w in warnings),
        "may_overrule": not refusal,
        "overrule_refusal": refusal,
        "example": example,
        "task": task,
    }
