"""Dataset quality for leads: the dashboard with plots and CSV, the task-wide scan, and the examples by warning."""

import csv
from urllib.parse import urlencode
from uuid import UUID

from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpRequest as HtmxHttpRequest
from django_htmx.http import HttpResponseStopPolling

from . import charts, overrides, quality, services
from .access import task_role
from .models import Example, Kind, QualityScan, Role, Task
from .scans import scan_request

LEAD, REVIEWER = Role.LEAD, Role.REVIEWER
STATUS_CSS = {"new": "s5", "draft": "s4", "submitted": "s1", "approved": "s2", "flagged": "s3", "rejected": "s6"}
DEFAULT_PRICE, DEFAULT_EPOCHS = 8.0, 3
DECIDED = ("approved", "flagged", "rejected")  # statuses a verdict (or triage) has put an example in


# A cell starting with one of these is a formula (or becomes one) in Excel, LibreOffice or Google Sheets; the tab,
# CR, LF and NUL are the OWASP and ASVS (1.2.10) additions; the full-width forms are read as formulas by some.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\x00", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_safe(value):
    """A CSV cell that a spreadsheet shows as text: text starting with a formula trigger gets a leading single quote
    (OWASP's advice on CSV injection). Numbers and other values are left alone."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def _latest_scan(task: Task) -> tuple[QualityScan | None, QualityScan | None]:
    """(the last finished scan, the live one if any)."""
    done = task.scans.filter(state="succeeded").order_by("-finished_at").first()
    live = task.scans.filter(state__in=["queued", "running"]).order_by("-created_at").first()
    return done, live


def _number(value: str | None, default: float, low: float, high: float) -> float:
    try:
        number = float(value) if value not in (None, "") else default
    except ValueError:
        return default
    return min(high, max(low, number))


def dashboard_data(task: Task, report: dict, *, price: float, epochs: int) -> dict:
    """Every plot's numbers: the CSV downloads and the charts read the same tables."""
    counts = services.status_counts([task.pk])[task.pk]
    totals = report.get("totals", {})
    n = sum(counts.values()) or 1
    kinds = totals.get("kinds", {})
    kind_total = sum(kinds.values()) or 1
    per_day = report.get("per_day", {})
    days = sorted(per_day)
    decisions = report.get("decisions", {})
    judged = sum(decisions.values())
    tables = {
        "status": [{"status": s, "examples": counts.get(s, 0)} for s in Example.Status.values],
        "per_day": [{"day": d, **{s: per_day[d].get(s, 0) for s in Example.Status.values}} for d in days],
        "coverage": [
            {
                "kind": k,
                "examples": kinds.get(k, 0),
                "share": round(kinds.get(k, 0) / kind_total, 4),
                "target": (task.coverage_targets or {}).get(k),
            }
            for k in Kind.values
        ],  # fmt: skip
        "labels": [{"label": label, "examples": c} for label, c in totals.get("labels", {}).items()],
        "lengths": [
            {"from_chars": report["lengths"]["edges"][i], "to_chars": report["lengths"]["edges"][i + 1], "examples": c}
            for i, c in enumerate(report.get("lengths", {}).get("counts", []))
        ],
        "annotators": report.get("annotators", []),
        "reviewers": report.get("reviewers", []),
        "reasons": [{"reason": r, "count": c} for r, c in report.get("reasons", {}).items()],
        "checks": check_rows(task, report),
    }
    approved_tokens = totals.get("approved_tokens", 0)
    cost = quality.estimate_training_cost(approved_tokens, price_per_million=price, epochs=epochs)
    decided = sum(counts.get(s, 0) for s in DECIDED)
    return {
        "tables": tables,
        "n": n,
        "snapshot": bool(report),  # False: no task-wide check yet, so the snapshot figures are unknown, not 0
        # live: what the status counts say now (one indexed count per status)
        "live": {
            "reviewed": decided,
            "approved_share": counts.get("approved", 0) / decided if decided else None,
            "waiting": counts.get("submitted", 0),
        },
        "approval_rate": decisions.get("approve", 0) / judged if judged else None,
        "judged": judged,
        "tokens": {
            "prompt": totals.get("prompt_tokens", 0),
            "completion": totals.get("completion_tokens", 0),
            "approved": approved_tokens,
            "cost": f"{cost:,.2f}" if cost >= 1 else f"{cost:.4f}",
            "price": price,
            "epochs": epochs,
        },
    }


def check_rows(task: Task, report: dict) -> list[dict]:
    """Per check: the examples with its warning open, and those marked not a problem, with the share overruled.

    Open warnings are counted by the last task-wide check (counting them live would read every example); the ones
    marked not a problem are counted now (only the overridden examples are read), and an override or undo since the
    check moves its warning between the two columns, so the row adds up without waiting for the next check.
    """
    opened = report.get("counts", {})
    then = report.get("overruled", {})
    now = overrides.overruled_counts(task)
    rows = []
    for code in set(opened) | set(now):
        overruled = now.get(code, 0)
        open_ = max(0, opened.get(code, 0) - (overruled - then.get(code, 0)))
        total = open_ + overruled
        rows.append(
            {
                "code": code,
                "title": overrides.check_title(code),
                "examples": open_,
                "overruled": overruled,
                "overruled_share": round(overruled / total, 4) if total else 0.0,
            }
        )
    return sorted(rows, key=lambda r: (-(r["examples"] + r["overruled"]), r["title"]))


def _charts(data: dict) -> dict:
    t = data["tables"]
    charts_out = {
        "status": charts.bar_chart(
            "Examples per status", [r["status"] for r in t["status"]], [r["examples"] for r in t["status"]],
            css=[STATUS_CSS[r["status"]] for r in t["status"]],
        ),
        "coverage": charts.bar_chart(
            "Kinds against targets", [r["kind"] for r in t["coverage"]], [r["share"] for r in t["coverage"]],
            targets=[r["target"] for r in t["coverage"]], percent=True,
        ),
    }  # fmt: skip
    moves = ("submitted", "approved", "flagged", "rejected")
    if len(t["per_day"]) == 1:  # one day is no line: the day's moves as bars
        (day,) = t["per_day"]
        charts_out["per_day"] = charts.bar_chart(
            f"Moves into each status on {day['day']}", list(moves), [day[s] for s in moves],
            css=[STATUS_CSS[s] for s in moves],
        )  # fmt: skip
    elif t["per_day"]:
        days = [r["day"] for r in t["per_day"]]
        series = [charts.Series(s, [r[s] for r in t["per_day"]], STATUS_CSS[s]) for s in moves]
        charts_out["per_day"] = charts.line_chart("Moves into each status per day", days, series)
    if t["lengths"]:
        edges = [r["from_chars"] for r in t["lengths"]] + [t["lengths"][-1]["to_chars"]]
        charts_out["lengths"] = charts.histogram(
            "Completion length", edges, [r["examples"] for r in t["lengths"]], unit=" ch"
        )
    if t["labels"]:
        charts_out["labels"] = charts.bar_chart(
            "Label balance", [r["label"] for r in t["labels"]], [r["examples"] for r in t["labels"]]
        )
    if t["reasons"]:
        charts_out["reasons"] = charts.bar_chart(
            "Reasons of flags and rejections", [r["reason"] for r in t["reasons"]], [r["count"] for r in t["reasons"]],
            css=["s3"] * len(t["reasons"]),
        )  # fmt: skip
    if t["annotators"]:
        charts_out["annotators"] = charts.bar_chart(
            "Submissions per annotator", [r["user"] for r in t["annotators"][:10]],
            [r["submitted"] for r in t["annotators"][:10]], css=["s1"] * min(10, len(t["annotators"])),
        )  # fmt: skip
    if t["reviewers"]:
        charts_out["reviewers"] = charts.bar_chart(
            "Verdicts per reviewer", [r["user"] for r in t["reviewers"][:10]],
            [sum(v for k, v in r.items() if k != "user") for r in t["reviewers"][:10]],
            css=["s2"] * min(10, len(t["reviewers"])),
        )  # fmt: skip
    return charts_out


@task_role(LEAD)
@require_GET
def dashboard(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    done, live = _latest_scan(task)
    price = _number(request.GET.get("price"), DEFAULT_PRICE, 0, 10_000)
    epochs = int(_number(request.GET.get("epochs"), DEFAULT_EPOCHS, 1, 100))
    data = dashboard_data(task, done.report if done else {}, price=price, epochs=epochs)
    context = {
        "task": task,
        "scan": done,
        "live": live,
        "data": data,
        "charts": _charts(data),
        "task_findings": (done.report.get("task_findings", []) if done else []),
        "exact": _exact_tokens(task, price=price, epochs=epochs),
    }
    examples_url = reverse("annotate:examples", args=[task.slug])
    context["check_rows"] = [
        {**row, "url": f"{examples_url}?{urlencode({'warning': row['code']})}"} for row in data["tables"]["checks"]
    ]
    return render(request, "annotate/dashboard.html", context)


def _exact_tokens(task: Task, *, price: float, epochs: int) -> dict | None:
    """The exact counts of the newest export the trainer preflight counted (with the task's tokenizer), if any."""
    from exports.models import Export

    export = (
        Export.objects.available()
        .filter(task=task)
        .exclude(preflight={})
        .order_by("-version")
        .only("version", "preflight")
        .first()
    )
    if export is None:
        return None
    report = export.preflight
    cost = quality.estimate_training_cost(report["tokens"], price_per_million=price, epochs=epochs)
    return {
        "version": export.version,
        "tokens": report["tokens"],
        "train": (report["splits"].get("train") or {}).get("tokens", 0),
        "tokenizer": report["tokenizer"],
        "cost": f"{cost:,.2f}" if cost >= 1 else f"{cost:.4f}",
    }


@task_role(LEAD)
@require_GET
def dashboard_csv(request: HtmxHttpRequest, name: str, *, task: Task) -> HttpResponse:
    done, _ = _latest_scan(task)
    data = dashboard_data(task, done.report if done else {}, price=DEFAULT_PRICE, epochs=DEFAULT_EPOCHS)
    if name not in data["tables"]:
        raise Http404("No such table.")
    rows = data["tables"][name]
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{task.slug}-{name}.csv"'
    columns = sorted({key for row in rows for key in row}, key=lambda k: list(rows[0]).index(k) if k in rows[0] else 99)
    writer = csv.writer(response)
    # Labels and usernames are user text (a username may start with @ + -): every cell goes through csv_safe.
    writer.writerow([csv_safe(column) for column in columns or ["empty"]])
    for row in rows:
        writer.writerow([csv_safe(row.get(column, "")) for column in columns])
    return response


@task_role(LEAD)
@require_POST
def scan_start(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    scan = scan_request(task=task, user=request.user)
    scan.refresh_from_db()
    if not request.htmx:
        return redirect("annotate:dashboard", task.slug)
    response = render(request, "annotate/_scan.html", {"task": task, "live": scan})
    if not scan.is_live:  # finished already (tasks run inline without Redis): show the new figures
        response["HX-Refresh"] = "true"
    return response


@task_role(LEAD)
@require_GET
def scan_status(request: HtmxHttpRequest, pk: int, *, task: Task) -> HttpResponse:
    scan = get_object_or_404(QualityScan, pk=pk, task=task)
    response = render(request, "annotate/_scan.html", {"task": task, "live": scan})
    if not scan.is_live:
        response = HttpResponseStopPolling(response.content)
        response["HX-Refresh"] = "true"  # the finished scan changes every figure on the page: reload it
    return response


EXAMPLE_COLUMNS = (
    "uuid", "external_id", "instruction", "completion", "kind", "status", "warnings", "risk", "updated_at", "id",
    "author_id",
)  # fmt: skip
PAGE_SIZE = 50
# Text search reads at most this many of the newest examples that pass the other filters (a substring search has no
# index; an id range on the primary key bounds it). A UUID or an external id is looked up in the whole task.
SEARCH_WINDOW = 100_000
MAX_QUERY_CHARS = 200


def _search(rows, query: str):
    """`rows` narrowed to the search: an example's UUID or external id exactly, else a substring of its instruction,
    input or completion among the newest SEARCH_WINDOW examples. Returns (rows, whether the text window applies)."""
    try:
        return rows.filter(uuid=UUID(query)), False
    except ValueError:
        pass
    by_id = rows.filter(external_id=query)
    if by_id.exists():  # the (task, external_id) unique index
        return by_id, False
    newest = rows.order_by("-id").values_list("id", flat=True)[SEARCH_WINDOW - 1 : SEARCH_WINDOW].first()
    if newest is not None:
        rows = rows.filter(id__gte=newest)
    text = Q(instruction__icontains=query) | Q(input__icontains=query) | Q(completion__icontains=query)
    return rows.filter(text), newest is not None


@task_role(LEAD, REVIEWER)
@require_GET
def examples(request: HtmxHttpRequest, *, task: Task) -> HttpResponse:
    """The task's examples, searched and filtered by status, kind or warning; each row opens the example's timeline.

    Keyset pages, so page 1,000 costs what page 1 does."""
    rows = Example.objects.filter(task=task)
    filters = {}
    status = request.GET.get("status", "")
    if status in Example.Status.values:
        rows, filters["status"] = rows.filter(status=status), status
    kind = request.GET.get("kind", "")
    if kind in Kind.values:
        rows, filters["kind"] = rows.filter(kind=kind), kind
    warning = request.GET.get("warning", "")
    if warning in quality.CHECKS:
        rows, filters["warning"] = rows.filter(warning_codes__contains=f",{warning},"), warning
    query = " ".join(request.GET.get("q", "").split())[:MAX_QUERY_CHARS]
    windowed = False
    if query:
        filters["q"] = query
        rows, windowed = _search(rows, query)
    order = "risk" if request.GET.get("order") == "risk" else "id"
    try:
        after = int(request.GET.get("after", ""))
    except ValueError:
        after = None
    if order == "risk":  # the 50 riskiest: what a reviewer looks at first
        page = list(
            rows.order_by("-risk", "-id")
            .select_related("author")
            .only(*EXAMPLE_COLUMNS, "author__username")[:PAGE_SIZE]
        )
    else:
        if after is not None:
            rows = rows.filter(id__lt=after)
        page = list(
            rows.order_by("-id").select_related("author").only(*EXAMPLE_COLUMNS, "author__username")[:PAGE_SIZE]
        )
    next_url = None
    if order == "id" and len(page) == PAGE_SIZE:
        next_url = "?" + urlencode({**filters, "after": page[-1].id})
    context = {
        "task": task,
        "page": page,
        "filters": filters,
        "next_url": next_url,
        "order": order,
        "windowed": windowed,
        "search_window": SEARCH_WINDOW,
        "statuses": Example.Status.choices,
        "kinds": Kind.choices,
        "checks": [(code, check.title) for code, check in quality.CHECKS.items() if check.scope != "summary"],
        "check_titles": {code: check.title for code, check in quality.CHECKS.items()},
        "query": urlencode(filters),
    }
    return render(request, "annotate/examples.html", context)
