"""Reviewing: the queue and its lease, verdicts and reviewer edits, triage, the timeline of an example, statistics.

Every write opens `transaction.atomic` and locks the example rows it changes (`select_for_update`), checks the
version the reviewer saw, and records who did what: a Verdict for a decision, a Transition for a change of status.
One module per part; the names callers use are these.
"""

from .queue import (
    ORDERINGS,
    REVIEW_LEASE,
    QueueFilters,
    annotators_of,
    review_claim_next,
    review_queue,
    review_release,
    review_take,
)
from .reading import (
    DIFFED_FIELDS,
    REVIEWED_REASONS,
    RevisionStep,
    TimelineEvent,
    example_timeline,
    review_stats,
    revision_history,
    step_diffs,
)
from .triage import TriageResult, triage_approve, triage_queryset, triage_reassign, triage_reject, triage_send_back
from .verdicts import StaleReview, verdict_record

__all__ = [
    "DIFFED_FIELDS", "ORDERINGS", "REVIEWED_REASONS", "REVIEW_LEASE", "QueueFilters", "RevisionStep", "StaleReview",
    "TimelineEvent", "TriageResult", "annotators_of", "example_timeline", "review_claim_next", "review_queue",
    "review_release", "review_stats", "review_take", "revision_history", "step_diffs", "triage_approve",
    "triage_queryset", "triage_reassign", "triage_reject", "triage_send_back", "verdict_record",
]  # fmt: skip
