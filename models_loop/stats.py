"""The figures of the model in the loop: spend, how drafts were edited per kind, and how the judge agrees with the
reviewers. Each is a few grouped queries whose result size is fixed (kinds × categories, scores × decisions), so a
page pays the same for ten examples or a million."""

import math

from django.db.models import Avg, Count

from annotate.models import Kind, Task
from reviews.models import Verdict

from .models import DraftEdit, Judgement, TaskModelSettings

CHANGES = [(value, label) for value, label in DraftEdit.Change.choices]
DECISION_RANK = {"reject": 0, "flag": 1, "approve": 2}  # for the rank correlation: worse verdicts rank lower


def spend(task: Task) -> dict:
    row = TaskModelSettings.objects.filter(task=task).values("requests", "tokens_in", "tokens_out").first()
    return row or {"requests": 0, "tokens_in": 0, "tokens_out": 0}


def draft_edits(task: Task) -> dict:
    """Drafts submitted per kind and category, for annotators who saw the draft and (apart) for those who did not."""
    cells = {
        (row["shown"], row["kind"], row["change"]): row["n"]
        for row in DraftEdit.objects.filter(task=task).values("shown", "kind", "change").annotate(n=Count("id"))
    }
    groups = {}
    for shown in (True, False):
        rows = []
        for kind, label in Kind.choices:
            counts = [cells.get((shown, kind, change), 0) for change, _ in CHANGES]
            total = sum(counts)
            if total:
                rows.append({"kind": kind, "label": label, "total": total,
                             "cells": [(n, n / total) for n in counts]})  # fmt: skip
        totals = [sum(cells.get((shown, kind, change), 0) for kind in Kind.values) for change, _ in CHANGES]
        all_ = sum(totals)
        similarity = DraftEdit.objects.filter(task=task, shown=shown).aggregate(s=Avg("similarity"))["s"]
        groups["shown" if shown else "hidden"] = {
            "rows": rows,
            "total": all_,
            "cells": [(n, n / all_ if all_ else 0) for n in totals],
            "similarity": similarity,
        }
    return {"changes": CHANGES, **groups}


def judge_agreement(task: Task) -> dict:
    """How the judge's scores line up with the reviewers' verdicts on the same texts (triage decisions left out):
    the share of low scores (1-2) that reviewers flagged or rejected, the share of high scores (4-5) they approved,
    and Spearman's and Kendall's (tau-b) rank correlations of score and verdict (reject < flag < approve)."""
    judged = Judgement.objects.filter(example__task=task)
    summary = judged.aggregate(n=Count("id"), mean=Avg("score"))
    cells: dict[tuple[int, int], int] = {}
    for row in (
        Verdict.objects.filter(example__task=task, in_triage=False, revision__judgements__isnull=False)
        .values("revision__judgements__score", "decision")
        .annotate(n=Count("id"))
        .order_by()
    ):
        key = (row["revision__judgements__score"], DECISION_RANK[row["decision"]])
        cells[key] = cells.get(key, 0) + row["n"]
    low = sum(n for (score, _), n in cells.items() if score <= 2)
    low_caught = sum(n for (score, rank), n in cells.items() if score <= 2 and rank < 2)
    high = sum(n for (score, _), n in cells.items() if score >= 4)
    high_approved = sum(n for (score, rank), n in cells.items() if score >= 4 and rank == 2)
    return {
        "judgements": summary["n"],
        "mean_score": summary["mean"],
        "pairs": sum(cells.values()),
        "low": low,
        "low_caught": low_caught / low if low else None,
        "high": high,
        "high_approved": high_approved / high if high else None,
        "spearman": spearman(cells),
        "kendall": kendall(cells),
    }


def _midranks(counts: dict[int, int]) -> dict[int, float]:
    ranks, before = {}, 0
    for value in sorted(counts):
        ranks[value] = before + (counts[value] + 1) / 2
        before += counts[value]
    return ranks


def spearman(cells: dict[tuple[int, int], int]) -> float | None:
    """Spearman's rho from a contingency table {(x, y): count}, ties given their mid-rank (as scipy and pandas do).
    None when either variable has a single value (no ranking to correlate)."""
    total = sum(cells.values())
    xs: dict[int, int] = {}
    ys: dict[int, int] = {}
    for (x, y), n in cells.items():
        xs[x] = xs.get(x, 0) + n
        ys[y] = ys.get(y, 0) + n
    rx, ry = _midranks(xs), _midranks(ys)
    mean = (total + 1) / 2
    cov = sum(n * (rx[x] - mean) * (ry[y] - mean) for (x, y), n in cells.items())
    vx = sum(n * (rx[x] - mean) ** 2 for x, n in xs.items())
    vy = sum(n * (ry[y] - mean) ** 2 for y, n in ys.items())
    if not vx or not vy:
        return None
    return cov / math.sqrt(vx * vy)


def kendall(cells: dict[tuple[int, int], int]) -> float | None:
    """Kendall's tau-b from a contingency table {(x, y): count}: concordant minus discordant pairs over the pairs not
    tied on each variable (as scipy.stats.kendalltau computes it). The table is at most 5 scores × 3 verdicts, so
    comparing its cells pairwise is constant work. None when either variable has a single value."""
    items = [(x, y, n) for (x, y), n in cells.items() if n]
    total = sum(n for _, _, n in items)
    concordant = discordant = 0
    for i, (x1, y1, n1) in enumerate(items):
        for x2, y2, n2 in items[i + 1 :]:
            sign = (x1 - x2) * (y1 - y2)
            if sign > 0:
                concordant += n1 * n2
            elif sign < 0:
                discordant += n1 * n2
    pairs = total * (total - 1) / 2
    xs: dict[int, int] = {}
    ys: dict[int, int] = {}
    for x, y, n in items:
        xs[x] = xs.get(x, 0) + n
        ys[y] = ys.get(y, 0) + n
    tied_x = sum(t * (t - 1) / 2 for t in xs.values())
    tied_y = sum(t * (t - 1) / 2 for t in ys.values())
    denominator = math.sqrt((pairs - tied_x) * (pairs - tied_y))
    return (concordant - discordant) / denominator if denominator else None
