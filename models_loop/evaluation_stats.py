"""The figures of an evaluation run: win / tie / loss overall and per kind with 95% Wilson score intervals, the model
judge's verdicts beside the people's, and the comparison of two runs item by item.

Wilson's interval (not the normal approximation) because shares near 0 or 1 and small counts are the usual case here:
it stays inside [0, 1] and is not degenerate at 0 or n successes. Each figure is one grouped query whose result has a
fixed size (kinds × results), whatever the run holds.
"""

import math

from django.db.models import Count

from annotate.models import Kind

from .models import EvaluationItem, EvaluationRun

Z95 = 1.959963984540054
Result = EvaluationItem.Result
RESULTS = [Result.BETTER, Result.SAME, Result.WORSE]
RANK = {Result.WORSE: 0, Result.SAME: 1, Result.BETTER: 2}


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a share k/n; None when n is 0."""
    if n <= 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _row(label: str, counts: dict[str, int], key: str = "") -> dict:
    n = sum(counts.get(r, 0) for r in RESULTS)
    cells = []
    for result in RESULTS:
        k = counts.get(result, 0)
        cells.append({"result": result, "n": k, "share": k / n if n else None, "ci": wilson(k, n)})
    return {"key": key, "label": label, "n": n, "cells": cells}


def run_figures(run: EvaluationRun) -> dict:
    """People's and the judge's results, overall and per kind, and how often the judge agreed with a person."""
    people: dict[tuple[str, str], int] = {}
    judge: dict[tuple[str, str], int] = {}
    agree = both = 0
    rows = run.items.values("kind", "result", "judge_result").annotate(n=Count("id")).order_by()
    for row in rows:
        if row["result"]:
            people[(row["kind"], row["result"])] = people.get((row["kind"], row["result"]), 0) + row["n"]
        if row["judge_result"]:
            judge[(row["kind"], row["judge_result"])] = judge.get((row["kind"], row["judge_result"]), 0) + row["n"]
        if row["result"] and row["judge_result"]:
            both += row["n"]
            agree += row["n"] if row["result"] == row["judge_result"] else 0

    def table(cells: dict) -> dict:
        overall = {r: sum(n for (_, res), n in cells.items() if res == r) for r in RESULTS}
        kinds = [
            _row(label, {r: cells.get((kind, r), 0) for r in RESULTS}, kind)
            for kind, label in Kind.choices
            if any(cells.get((kind, r)) for r in RESULTS)
        ]
        return {"overall": _row("All", overall, "all"), "kinds": kinds}

    total = run.items.count()
    return {
        "items": total,
        "people": table(people),
        "judge": table(judge) if run.judge_model else None,
        "agreement": {"both": both, "agree": agree, "share": agree / both if both else None, "ci": wilson(agree, both)},
    }


def runs_compare(first: EvaluationRun, second: EvaluationRun, *, shown: int = 20) -> dict:
    """Per example judged by people in both runs: better in the second, the same, or worse; both runs' results on
    those shared examples; and the first `shown` examples whose result changed. Linear in the runs' items."""
    a = dict(first.items.exclude(result="").values_list("example_id", "result"))
    b = dict(second.items.exclude(result="").values_list("example_id", "result"))
    moved = {"improved": 0, "unchanged": 0, "regressed": 0}
    before: dict[str, int] = {}
    after: dict[str, int] = {}
    changed = []
    for example_id in sorted(a.keys() & b.keys()):
        before[a[example_id]] = before.get(a[example_id], 0) + 1
        after[b[example_id]] = after.get(b[example_id], 0) + 1
        delta = RANK[b[example_id]] - RANK[a[example_id]]
        moved["improved" if delta > 0 else "regressed" if delta < 0 else "unchanged"] += 1
        if delta and len(changed) < shown:
            changed.append(example_id)
    items = {i.example_id: i for i in second.items.filter(example_id__in=changed).select_related("example")}
    return {
        "shared": sum(moved.values()),
        "moved": moved,
        "changed": [{"item": items[pk], "before": Result(a[pk]).label, "after": Result(b[pk]).label} for pk in changed],
        "first": _row(first.name, before),
        "second": _row(second.name, after),
    }
