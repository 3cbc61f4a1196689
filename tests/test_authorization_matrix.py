"""Every URL of the project, taken from the resolver (so a new view cannot escape), against every persona.

Personas: anonymous, the annotator, reviewer and lead of `task`, a member of another task (`outsider`, who holds
every role on `other_task`) and staff. Both tasks are filled with real objects for every URL parameter: examples in
each status, a verdict, a finished export with its files, an import job, a quality scan, a pending upload in the
session, and an API token per user.

For each route, EXPECTED says which personas pass on their own task and what they get for GET and for POST (an
empty form); the task's other members get 403. Whatever belongs to another task gives 404: the other task's slug
(for everyone but staff) and this task's slug with the object id of another task (for everyone). A route missing
from EXPECTED fails, so a new view has to be added here. htmx requests (HX-Request) get the same answers.
"""

import re
from dataclasses import dataclass, field

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from pytest_django.asserts import assertNotContains

from annotate import importing
from annotate import services as annotate_services
from annotate.models import Example, ImportJob, QualityOverride, QualityScan, Role, TemplateMove
from annotate.views_import import SESSION_KEY
from exports import services as export_services
from exports.models import ApiToken, Export
from models_loop.models import EvaluationItem, EvaluationRun
from reviews import services as review_services
from reviews.models import Verdict
from tests.conftest import _member
from tests.exports.conftest import build

pytestmark = pytest.mark.django_db

# --- the routes, from the resolver ----------------------------------------------------------------------------------


def _patterns(resolver=None, prefix="", namespace=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if str(entry.pattern).startswith("admin/"):
                continue  # Django's admin has its own staff checks (test_admin_is_for_staff_only)
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _patterns(entry, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), f"{namespace}{entry.name}" if entry.name else None


ALL_ROUTES = list(_patterns())
ROUTES = {name: route for route, name in ALL_ROUTES}
PARAMS = {name: re.findall(r"<(?:\w+:)?(\w+)>", route) for name, route in ROUTES.items()}
OBJECT_PARAMS = {
    "uuid",
    "pk",
    "version",
    "token",
    "token_id",
    "move_id",
    "job_id",
    "item",
}  # ids of objects that belong to a task (or a user)

# --- the expected answers ---------------------------------------------------------------------------------------

AN, RE_, LE, OU, ST = "annotator", "reviewer", "lead", "outsider", "staff"
PERSONAS = ("anonymous", AN, RE_, LE, OU, ST)
USERS = frozenset({AN, RE_, LE, OU, ST})
LOGIN = "login"  # a 302 to the login page


@dataclass(frozen=True)
class Rule:
    """`allowed` get `get` and `post` on their own task (or account); other members of the task get 403."""

    allowed: frozenset
    get: int
    post: int
    public: tuple | None = None  # a page anyone may open: (GET, POST) of anonymous users
    api: bool = False  # bearer tokens only: a session is not enough (401); see the API tests below


def rule(allowed, get, post) -> Rule:
    return Rule(frozenset(allowed), get, post)


EXPECTED: dict[str, Rule] = {
    # public
    # public: (GET, POST) of anonymous users, then of users who are logged in
    "login": Rule(USERS, 302, 302, public=(200, 200)),  # an empty form: errors; a logged-in user goes home
    "logout": Rule(USERS, 405, LOGIN, public=(405, LOGIN)),
    "healthz": Rule(USERS, 200, 200, public=(200, 200)),
    # no task in the URL
    "home": rule(USERS, 200, 405),
    "annotate:task_create": rule({LE, OU, ST}, 200, 200),  # leads of any task and staff
    "exports:tokens": rule(USERS, 200, 200),
    "exports:token_revoke": rule(USERS, 405, 302),  # the user's own token; another user's: 404
    "annotate:password_change": rule(USERS, 200, 200),  # an empty form: errors
    "annotate:flagged_badge": rule(USERS, 200, 405),  # the header's count of one's own flagged examples
    # an invited member's one-time link: with a wrong token, a page saying the link no longer works
    "annotate:set_password": Rule(USERS, 200, 200, public=(200, 200)),
    # a task's pages
    "annotate:task_detail": rule({AN, RE_, LE, ST}, 200, 405),
    "annotate:task_edit": rule({LE, ST}, 200, 200),
    "annotate:template_edit": rule({LE, ST}, 200, 200),
    # the world's task is a text task: no tool set page (test_tools_views.py covers a tools task's roles)
    "annotate:tools_edit": rule({LE, ST}, 404, 404),
    "annotate:template_preview": rule({LE, ST}, 405, 200),
    "annotate:template_move": rule({LE, ST}, 200, 302),  # an empty form: "nothing to move", back to the preview
    "annotate:template_move_status": rule({LE, ST}, 286, 405),  # a finished move: htmx's "stop polling"
    "annotate:members": rule({LE, ST}, 200, 200),
    "annotate:audit": rule({LE, ST}, 200, 405),
    "annotate:work": rule({AN, ST}, 200, 302),  # GET: "Start annotating"; POST claims, redirects to the editor
    "annotate:dashboard": rule({LE, ST}, 200, 405),
    "annotate:dashboard_csv": rule({LE, ST}, 200, 405),
    "annotate:scan_start": rule({LE, ST}, 405, 302),
    "annotate:scan_status": rule({LE, ST}, 286, 405),  # a finished scan: htmx's "stop polling"
    "annotate:examples": rule({RE_, LE, ST}, 200, 405),
    "annotate:my_work": rule({AN, ST}, 200, 405),
    "annotate:write_new": rule({AN, ST}, 200, 200),
    "annotate:edit": rule({AN, ST}, 200, 405),
    "annotate:save": rule({AN, ST}, 405, 200),
    "annotate:feedback": rule({AN, ST}, 405, 200),
    "annotate:submit": rule({AN, ST}, 405, 200),
    "annotate:skip": rule({AN, ST}, 405, 302),
    # "not a problem" on a warning: reviewers and leads (an empty POST: refused with the reason, back to the page)
    "annotate:overrule": rule({RE_, LE, ST}, 405, 302),
    "annotate:overrule_undo": rule({RE_, LE, ST}, 405, 302),  # given by the reviewer; a lead may undo any
    "imports:upload": rule({LE, ST}, 200, 200),
    "imports:mapping": rule({LE, ST}, 200, 200),
    "imports:preview": rule({LE, ST}, 405, 200),
    "imports:job": rule({LE, ST}, 200, 405),
    "imports:progress": rule({LE, ST}, 200, 405),
    "imports:cancel": rule({LE, ST}, 405, 302),
    "exports:list": rule({RE_, LE, ST}, 200, 405),
    "exports:create": rule({LE, ST}, 405, 200),
    "exports:tokenizer": rule({LE, ST}, 405, 200),  # an empty form: its errors
    "exports:tokenizer_remove": rule({LE, ST}, 405, 302),
    "exports:detail": rule({RE_, LE, ST}, 200, 405),
    "exports:status": rule({RE_, LE, ST}, 200, 405),
    "exports:cancel": rule({LE, ST}, 405, 302),
    "exports:delete": rule({LE, ST}, 405, 302),  # an empty form deletes nothing: back to the list with a message
    "exports:download": rule({RE_, LE, ST}, 200, 405),
    "exports:api_latest": Rule(frozenset(), 401, 405, api=True),
    "exports:api_download": Rule(frozenset(), 401, 405, api=True),
    # The JSON API (tests/api): a session never opens it; (GET, POST) as its routes allow methods.
    "api:openapi-json": Rule(USERS, 200, 200, public=(200, 200)),  # the schema holds no data
    "api:openapi-view": Rule(USERS, 200, 200, public=(200, 200)),
    "api:api-root": Rule(USERS, 404, 404, public=(404, 404)),
    "api:tasks": Rule(frozenset(), 401, 405, api=True),
    "api:exports": Rule(frozenset(), 401, 401, api=True),  # the same path starts an export (POST)
    "api:export_start": Rule(frozenset(), 401, 401, api=True),
    "api:export": Rule(frozenset(), 401, 405, api=True),
    "api:import_start": Rule(frozenset(), 405, 401, api=True),
    "api:import": Rule(frozenset(), 401, 405, api=True),
    "reviews:queue": rule({RE_, LE, ST}, 200, 405),
    "reviews:next": rule({RE_, LE, ST}, 200, 302),  # GET: "Start reviewing"; POST leases, redirects to the pair
    "reviews:previous": rule({RE_, LE, ST}, 302, 405),
    "reviews:review": rule({RE_, LE, ST}, 200, 302),  # POST: the queue's "Review" takes the lease first
    "reviews:decide": rule({RE_, LE, ST}, 405, 200),
    "reviews:triage": rule({RE_, LE, ST}, 200, 405),
    "reviews:triage_act": rule({RE_, LE, ST}, 405, 302),
    "reviews:example": rule({AN, RE_, LE, ST}, 200, 405),  # an annotator: only examples they wrote
    "reviews:discard": rule({LE, ST}, 405, 302),  # an empty form: nothing discarded, back to the example's page
    "models_loop:settings": rule({LE, ST}, 200, 200),
    "models_loop:preview": rule({LE, ST}, 405, 200),
    "models_loop:run_start": rule({LE, ST}, 405, 302),  # no endpoint in the tests: back to the task page, saying so
    "models_loop:run_status": rule({LE, ST}, 286, 405),  # no run in progress: htmx's "stop polling"
    "models_loop:run_cancel": rule({LE, ST}, 405, 302),  # no run in progress: back to the task page, saying so
    "models_loop:evaluations": rule({RE_, LE, ST}, 200, 405),
    "models_loop:evaluation_start": rule({LE, ST}, 405, 200),  # an empty form comes back with its errors
    "models_loop:evaluation": rule({RE_, LE, ST}, 200, 405),
    "models_loop:evaluation_judge": rule({RE_, LE, ST}, 200, 200),  # POST: an empty verdict comes back refused
    "models_loop:evaluation_cancel": rule({LE, ST}, 405, 302),  # a finished run: back to its page, saying so
    "models_loop:evaluation_new_example": rule({RE_, LE, ST}, 405, 302),  # not judged worse: back, saying so
    "preferences:pairs": rule({RE_, LE, ST}, 200, 405),
    "preferences:pairs_review": rule({RE_, LE, ST}, 405, 302),  # an empty selection: nothing marked, back to the list
    "preferences:compare": rule({AN, RE_, LE, ST}, 200, 405),
    "preferences:judge": rule({AN, RE_, LE, ST}, 405, 200),  # an empty form: the comparison page with its errors
    "preferences:triage": rule({LE, ST}, 200, 405),
    "preferences:triage_decide": rule({LE, ST}, 405, 302),  # an empty form: back to triage, saying what is missing
}

# --- two tasks full of real objects -------------------------------------------------------------------------------

SECRET = "ZQX-elsewhere-only"  # in every text of the other task: never on a page of `task`


@dataclass
class Objects:
    """The objects of one task that URLs name."""

    task: object
    draft: Example
    submitted: Example
    export_version: int
    import_job: ImportJob
    scan: QualityScan
    upload_token: str
    move: TemplateMove
    examples: list = field(default_factory=list)
    evaluation: EvaluationRun | None = None
    override: object = None


def _submit(task, author, text: str, instruction: str) -> Example:
    """A submitted example of `author` with its revision (the services' way, without the editor's round trips)."""
    return annotate_services.example_create(
        task=task, fields={"instruction": instruction}, completion=text, source=Example.Source.WRITTEN,
        status=Example.Status.SUBMITTED, author=author,
    )  # fmt: skip


def _fill(task, *, author, reviewer, lead, text: str) -> Objects:
    """Examples in every status (written by `author`, judged by `reviewer`), a v1 export with files, a finished
    import job, a finished quality scan and an upload waiting for its mapping."""
    made = []
    for i in range(3):
        made.append(annotate_services.example_create(task=task, fields={"instruction": f"{text} new {i}?"}))
    draft = annotate_services.example_write_new(
        task=task, user=author, fields={"instruction": f"{text} draft?"}, completion=f"{text} draft answer", kind="edge"
    )
    submitted = [_submit(task, author, f"{text} answer {i}.", f"{text} submitted {i}?") for i in range(4)]
    for i in range(3):
        example = _submit(task, author, f"{text} approved answer {i}.", f"{text} approved {i}?")
        review_services.verdict_record(example=example, reviewer=reviewer, decision="approve", version=example.version)
        made.append(example)
    for decision in ("flag", "reject"):
        example = _submit(task, author, f"{text} {decision} answer.", f"{text} {decision}ged?")
        review_services.verdict_record(
            example=example, reviewer=reviewer, decision=decision, version=example.version,
            reasons=["unclear"], comment=f"{text} reviewer comment",
        )  # fmt: skip
        made.append(example)
    export = build(task, user=lead)
    assert export.state == "succeeded", export.error
    job = ImportJob.objects.create(
        task=task, filename=f"{text}.jsonl", path="/nonexistent", file_format="jsonl", state="succeeded",
        created_by=lead, counts={"records": 1},
    )  # fmt: skip
    scan = QualityScan.objects.create(task=task, state="succeeded", report={}, created_by=lead)
    move = TemplateMove.objects.create(task=task, to_template=task.current_template, state="succeeded", created_by=lead)
    token = importing.upload_token()
    path = importing.upload_path(token)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'{{"instruction": "{text} uploaded?", "completion": "{text} uploaded."}}\n')
    override = QualityOverride.objects.create(
        task=task, example=draft, code="whitespace", text_hash="0" * 64, example_version=draft.version,
        created_by=reviewer,
    )  # fmt: skip
    objects = Objects(
        task, draft, submitted[0], export.version, job, scan, token, move, [*made, draft, *submitted], override=override
    )
    # A finished evaluation run over two approved examples (rows made directly: this export has no test split).
    objects.evaluation = EvaluationRun.objects.create(
        task=task, name=f"{text} run", export=export, source="file", state="succeeded", size=2
    )
    for example in made[3:5]:
        EvaluationItem.objects.create(
            run=objects.evaluation, example=example, kind=example.kind, reference=example.completion,
            output=f"{text} model answer", answered=True, model_first=True,
        )  # fmt: skip
    return objects


@dataclass
class World:
    users: dict  # persona -> user (no "anonymous")
    own: Objects  # of `task`
    other: Objects  # of `other_task`
    tokens: dict  # persona -> (ApiToken, raw token)
    stranger_token: ApiToken  # a token of a user who is none of the personas


@pytest.fixture
def world(settings, tmp_path, task, other_task, annotator, reviewer, lead, outsider, staff) -> World:
    return make_world(settings, tmp_path, task, other_task, annotator, reviewer, lead, outsider, staff)


def make_world(settings, tmp_path, task, other_task, annotator, reviewer, lead, outsider, staff) -> World:
    """The fixture's work, for other modules' fixtures (tests/test_get_is_safe.py sweeps the same routes)."""
    settings.VAR_DIR = tmp_path / "var"
    other_task.name = "Elsewhere team task"  # no apostrophe: a page naming it is found as it is written
    other_task.save()
    own = _fill(task, author=annotator, reviewer=reviewer, lead=lead, text="Parcel")
    oona = _member(other_task, "oona", Role.ANNOTATOR)  # writes the other task's examples; otto judges them
    other = _fill(other_task, author=oona, reviewer=outsider, lead=outsider, text=SECRET)
    # Export versions count per task: renumber the other task's v1 to v7, a version `task` does not have, so that
    # `task`'s slug with v7 (and the other task's slug with v1) name objects of another task.
    export = Export.objects.get(task=other_task)
    folder = export_services.export_dir(export)
    Export.objects.filter(pk=export.pk).update(version=7)
    export.refresh_from_db()
    folder.rename(export_services.export_dir(export))
    other.export_version = 7
    users = {AN: annotator, RE_: reviewer, LE: lead, OU: outsider, ST: staff}
    tokens = {persona: export_services.token_create(user=user, name=f"{persona} pipeline") for persona, user in
              users.items()}  # fmt: skip
    stranger, _ = export_services.token_create(user=oona, name=f"{SECRET} pipeline")
    return World(users, own, other, tokens, stranger)


def _client_for(world: World, persona: str):
    client = Client()
    if persona == "anonymous":
        return client
    client.force_login(world.users[persona])
    session = client.session
    session[SESSION_KEY] = {  # an upload of each task waits in every session: the task must match the URL's
        objects.upload_token: {"task": objects.task.pk, "filename": "up.jsonl", "size": 80, "file_format": "jsonl"}
        for objects in (world.own, world.other)
    }
    session.save()
    return client


def _value(name: str, param: str, objects: Objects, world: World, persona: str, *, foreign: bool):
    if param == "slug":
        return objects.task.slug
    if param == "uuid":
        return objects.draft.uuid if name.startswith("annotate:") else objects.submitted.uuid
    if param == "pk" and name == "annotate:overrule_undo":
        return objects.override.pk
    if param == "pk":
        if name.startswith("models_loop:"):
            return objects.evaluation.pk
        return objects.scan.pk if name.startswith("annotate:") else objects.import_job.pk
    if param == "item":
        return objects.evaluation.items.first().pk
    if param == "kind":
        return "draft"
    if param == "version":
        return objects.export_version
    if param == "token":
        return objects.upload_token if name.startswith("imports:") else "no-such-token"
    if param == "job_id":
        return objects.import_job.pk
    if param == "move_id":
        return objects.move.pk
    if param == "uidb64":
        return "MQ"  # user id 1 in base64: with a wrong token it opens nothing
    if param == "token_id":
        if foreign or persona == "anonymous":
            return world.stranger_token.pk
        return world.tokens[persona][0].pk
    if param == "name":
        return "status" if name == "annotate:dashboard_csv" else "train.jsonl"
    pytest.fail(f"{name}: no object for the URL parameter <{param}>; give _value() one")


def _url(name: str, world: World, persona: str, *, slug_of: Objects, objects_of: Objects) -> str:
    kwargs = {}
    for param in PARAMS[name]:
        source = slug_of if param == "slug" else objects_of
        kwargs[param] = _value(name, param, source, world, persona, foreign=source is not slug_of)
    return reverse(name, kwargs=kwargs)


def _answer(response):
    if response.status_code == 302:
        return LOGIN if response.url.startswith("/login/") else 302
    return response.status_code


def _expected(name: str, persona: str, method: str, world: World, *, slug_of: Objects, objects_of: Objects):
    rule = EXPECTED[name]
    ok = rule.get if method == "get" else rule.post
    if rule.public:
        return rule.public[method == "post"] if persona == "anonymous" else ok
    if rule.api:
        return rule.post if method == "post" else rule.get  # a session never opens the API: 401 (or 405)
    if persona == "anonymous":
        return LOGIN
    mixed = slug_of is not objects_of and any(p in OBJECT_PARAMS for p in PARAMS[name])
    if "slug" not in PARAMS[name]:  # the user's own pages (home, tokens)
        if persona not in rule.allowed:
            return 403
        return (405 if ok == 405 else 404) if mixed else ok
    task = slug_of.task
    if persona == ST:
        allowed = ST in rule.allowed
    elif persona == OU:  # a member of the other task only, with every role there
        if task != world.other.task:
            return 404
        allowed = bool(rule.allowed & {AN, RE_, LE})
    else:
        if task != world.own.task:
            return 404
        allowed = persona in rule.allowed
    if not allowed:
        return 403
    return (405 if ok == 405 else 404) if mixed else ok  # the method is checked before the object is looked up


def _scenarios(name: str, world: World):
    """(slug of, objects of) pairs: each task with its own objects, and, for routes naming objects, each task's slug
    with the other task's objects."""
    pairs = [(world.own, world.own), (world.other, world.other)]
    if any(p in OBJECT_PARAMS for p in PARAMS[name]):
        pairs += [(world.own, world.other), (world.other, world.own)]
    if "slug" not in PARAMS[name] and not any(p in OBJECT_PARAMS for p in PARAMS[name]):
        pairs = pairs[:1]
    return pairs


CHECKED = sorted(name for name in ROUTES if name)


@pytest.mark.parametrize("name", CHECKED)
def test_every_persona_gets_the_expected_answer(world, name):
    assert name in EXPECTED, f"{name} ({ROUTES[name]}) is missing from EXPECTED: say who may use it"
    wrong = []
    for persona in PERSONAS:
        client = _client_for(world, persona)
        for slug_of, objects_of in _scenarios(name, world):
            url = _url(name, world, persona, slug_of=slug_of, objects_of=objects_of)
            for method in ("get", "post"):
                expected = _expected(name, persona, method, world, slug_of=slug_of, objects_of=objects_of)
                plain = getattr(client, method)(url)
                htmx = getattr(client, method)(url, headers={"HX-Request": "true"})
                got, got_htmx = _answer(plain), _answer(htmx)
                if got != expected:
                    wrong.append(f"{persona} {method.upper()} {url}: {got}, expected {expected}")
                # htmx gets the same refusals; an allowed htmx request may get a fragment (200) where a plain one
                # is redirected, or a client redirect.
                same = got_htmx == got or (expected in (200, 286, 302) and got_htmx in (200, 286, 302))
                if not same:
                    wrong.append(f"{persona} {method.upper()} {url} with HX-Request: {got_htmx}, plain {got}")
                if expected in (403, 404) and _names_a_stranger_task(world, persona, objects_of, plain, htmx):
                    wrong.append(f"{persona} {method.upper()} {url}: the refusal names a task they are not in")
    assert not wrong, "\n".join(wrong)


def _names_a_stranger_task(world: World, persona: str, objects_of: Objects, *responses) -> bool:
    """Whether a refusal shows the name or the text of a task the persona is not a member of."""
    mine = {ST: [world.own.task, world.other.task], OU: [world.other.task]}.get(persona, [world.own.task])
    if persona == "anonymous" or objects_of.task in mine:
        return False
    bodies = [r.content.decode(errors="replace") for r in responses if not getattr(r, "streaming", False)]
    return any(objects_of.task.name in body or SECRET in body for body in bodies)


def test_every_route_is_in_the_table_and_the_table_has_no_stale_rows():
    names = {name for _, name in ALL_ROUTES}
    assert None not in names, "every route needs a name, so that the matrix can reverse it"
    assert names == set(EXPECTED), (
        f"missing from EXPECTED: {sorted(names - set(EXPECTED))}; stale: {sorted(set(EXPECTED) - names)}"
    )
    assert "annotate:edit" in names and "annotate:dashboard" in names
    assert len(ALL_ROUTES) >= 45
    named = {"slug", "name", "uidb64", "kind"}  # not objects: a task's slug, a file's name, a link's id, a run kind
    unnamed_params = {p for params in PARAMS.values() for p in params} - OBJECT_PARAMS - named
    assert not unnamed_params, f"new URL parameters: {unnamed_params}; give _value() an object for each"


def test_admin_is_for_staff_only(client, world):
    url = reverse("admin:index")
    assert client.get(url).url.startswith("/admin/login/")
    for persona in (AN, RE_, LE, OU):
        client.force_login(world.users[persona])
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith("/admin/login/"), persona
    client.force_login(world.users[ST])
    assert client.get(url).status_code == 200


def test_an_annotator_sees_the_timeline_only_of_examples_they_wrote(client, world, task):
    someone = _member(task, "otis", Role.ANNOTATOR)
    client.force_login(someone)
    assert client.get(reverse("reviews:example", args=[task.slug, world.own.submitted.uuid])).status_code == 404


# --- listings, searches and downloads never show another task's data ----------------------------------------------


def _pages(world: World, persona: str) -> list[str]:
    own, other = world.own, world.other
    slug = own.task.slug
    uuid = other.submitted.uuid
    pages = [reverse("home"), reverse("exports:tokens"), reverse("annotate:task_detail", args=[slug])]
    if persona in (AN, ST):
        pages += [reverse("annotate:my_work", args=[slug]) + f"?status={s}" for s in
                  ("draft", "flagged", "submitted", "approved", "rejected")]  # fmt: skip
        pages += [
            reverse("annotate:edit", args=[slug, own.draft.uuid]),
            reverse("annotate:write_new", args=[slug]),
        ]
    if persona in (AN, RE_, LE, ST):
        pages += [reverse("reviews:example", args=[slug, own.submitted.uuid])]
    if persona in (RE_, LE, ST):
        examples = reverse("annotate:examples", args=[slug])
        pages += [examples, examples + "?order=risk", examples + f"?after={other.submitted.pk + 1}"]
        pages += [examples + f"?status={s}" for s in Example.Status.values]
        queue = reverse("reviews:queue", args=[slug])
        pages += [queue, queue + "?order=risk", queue + f"?q={SECRET}"]
        triage = reverse("reviews:triage", args=[slug])
        pages += [triage] + [triage + f"?state={s}" for s in ("flagged", "rejected", "split")]
        pages += [
            reverse("reviews:next", args=[slug]) + f"?skip={uuid}",
            reverse("reviews:previous", args=[slug]) + f"?before={uuid}",
            reverse("reviews:review", args=[slug, own.submitted.uuid]),
            reverse("exports:list", args=[slug]),
            reverse("exports:detail", args=[slug, own.export_version]),
            reverse("exports:status", args=[slug, own.export_version]),
        ]
        pages += [reverse("exports:download", args=[slug, own.export_version, name]) for name in
                  ("train.jsonl", "validation.jsonl", "manifest.json", "README.md")]  # fmt: skip
    if persona in (LE, ST):
        pages += [
            reverse("annotate:dashboard", args=[slug]),
            reverse("annotate:members", args=[slug]),
            reverse("annotate:audit", args=[slug]),
            reverse("annotate:template_edit", args=[slug]),
            reverse("models_loop:settings", args=[slug]),
            reverse("imports:upload", args=[slug]),
            reverse("imports:job", args=[slug, own.import_job.pk]),
            reverse("imports:mapping", args=[slug, own.upload_token]),
            reverse("annotate:scan_status", args=[slug, own.scan.pk]),
        ]
        pages += [reverse("annotate:dashboard_csv", args=[slug, name]) for name in
                  ("status", "per_day", "coverage", "labels", "lengths", "annotators", "reviewers", "reasons",
                   "checks")]  # fmt: skip
    return pages


@pytest.mark.parametrize("persona", [AN, RE_, LE, ST])
def test_listings_and_downloads_never_show_the_other_tasks_data(world, persona):
    client = _client_for(world, persona)
    for url in _pages(world, persona):
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(url, headers=headers)
            assert response.status_code in (200, 286, 302), (url, response.status_code)
            if response.status_code == 302:  # reviews:previous: to the user's own last verdict, or the queue
                assert response.url.startswith(f"/tasks/{world.own.task.slug}/"), (url, response.url)
                continue
            if getattr(response, "streaming", False):
                body = b"".join(response.streaming_content).decode()
                assert SECRET not in body, url
            else:
                assertNotContains(response, SECRET, status_code=response.status_code, msg_prefix=url)
                if persona != ST:
                    assertNotContains(response, world.other.task.slug, status_code=response.status_code, msg_prefix=url)


def test_the_home_page_lists_only_the_users_tasks(client, world):
    client.force_login(world.users[OU])
    response = client.get(reverse("home"))
    assertNotContains(response, world.own.task.slug)
    assertNotContains(response, "Support answers")
    client.force_login(world.users[ST])
    response = client.get(reverse("home"))
    assert world.own.task.slug in response.content.decode() and world.other.task.slug in response.content.decode()


# --- writes on another task's objects change nothing --------------------------------------------------------------


def test_no_verdict_edit_or_bulk_action_reaches_another_tasks_examples(client, world):
    slug = world.own.task.slug
    target = world.other.submitted
    before = list(Example.objects.filter(task=world.other.task).values_list("pk", "status", "version", "completion"))
    verdicts = Verdict.objects.count()
    for persona in (RE_, LE, ST):
        client.force_login(world.users[persona])
        response = client.post(
            reverse("reviews:decide", args=[slug, target.uuid]), {"decision": "approve", "version": target.version}
        )
        assert response.status_code == 404, persona
        if persona != RE_:  # leads and staff discard drafts, of their own task only
            discard = {"version": world.other.draft.version, "note": "not mine"}
            response = client.post(reverse("reviews:discard", args=[slug, world.other.draft.uuid]), discard)
            assert response.status_code == 404, persona
        for action in ("approve", "reject", "send_back"):
            data = {"action": action, "uuids": [str(e.uuid) for e in world.other.examples], "reasons": ["unclear"]}
            response = client.post(reverse("reviews:triage_act", args=[slug]), data)
            assert response.status_code == 302 and response.url.startswith(reverse("reviews:triage", args=[slug]))
    for persona in (AN, ST):
        client.force_login(world.users[persona])
        edit = {"completion": "overwritten", "kind": "happy", "version": target.version}
        for route in ("annotate:save", "annotate:submit", "annotate:skip", "annotate:feedback"):
            response = client.post(reverse(route, args=[slug, target.uuid]), edit | {"reason": "unclear"})
            assert response.status_code == 404, (persona, route)
    after = list(Example.objects.filter(task=world.other.task).values_list("pk", "status", "version", "completion"))
    assert after == before
    assert Verdict.objects.count() == verdicts


def test_imports_and_exports_of_another_task_cannot_be_cancelled_or_started(client, world):
    slug = world.own.task.slug
    other = world.other
    client.force_login(world.users[ST])  # even staff: the object is not of the task in the URL
    assert client.post(reverse("imports:cancel", args=[slug, other.import_job.pk])).status_code == 404
    assert client.post(reverse("exports:cancel", args=[slug, other.export_version])).status_code == 404
    assert client.post(reverse("imports:preview", args=[slug, other.upload_token])).status_code == 404
    data = {"action": "import", "status": "new", "map_0": "instruction"}
    assert client.post(reverse("imports:mapping", args=[slug, other.upload_token]), data).status_code == 404
    assert not Example.objects.filter(task=world.own.task, instruction__contains=SECRET).exists()
    assert other.import_job.task.imports.count() == 1


def test_tokens_of_other_users_are_neither_listed_nor_revocable(client, world):
    stranger = world.stranger_token
    for persona in (AN, RE_, LE, OU, ST):
        client.force_login(world.users[persona])
        response = client.get(reverse("exports:tokens"))
        assertNotContains(response, stranger.prefix)
        assertNotContains(response, SECRET)
        for other_persona, (token, _) in world.tokens.items():
            if other_persona != persona:
                assertNotContains(response, token.prefix)
        assert client.post(reverse("exports:token_revoke", args=[stranger.pk])).status_code == 404
    stranger.refresh_from_db()
    assert stranger.is_active


# --- the pipeline API: bearer tokens ------------------------------------------------------------------------------


def test_api_downloads_answer_by_token(client, world):
    own, other = world.own.task.slug, world.other.task.slug

    def get(slug: str, raw: str | None, version: int | None = None, name: str = "train.jsonl"):
        if version is None:
            url = reverse("exports:api_latest", args=[slug, name])
        else:
            url = reverse("exports:api_download", args=[slug, version, name])
        headers = {"Authorization": f"Bearer {raw}"} if raw is not None else {}
        return client.get(url, headers=headers)

    lead_token = world.tokens[LE][1]
    for version in (None, 1):
        response = get(own, lead_token, version)
        assert response.status_code == 200
        body = b"".join(response.streaming_content).decode()
        assert "Parcel" in body and SECRET not in body
        assert get(other, lead_token, version).status_code == 404  # another task's
        assert get(own, None, version).status_code == 401  # none
        assert get(own, "Bearer", version).status_code == 401
        assert get(own, "psk_" + "x" * 40, version).status_code == 401  # unknown
    assert get(own, lead_token, 7).status_code == 404  # v7 is the other task's
    assert get(own, world.tokens[RE_][1]).status_code == 200  # reviewers read exports too
    assert get(own, world.tokens[AN][1]).status_code == 403  # a member without the role
    assert get(own, world.tokens[OU][1]).status_code == 404  # a member of another task only
    assert get(other, world.tokens[OU][1], 7).status_code == 200
    assert get(own, world.tokens[ST][1]).status_code == 200
    assert get(other, world.tokens[ST][1]).status_code == 200
    client.force_login(world.users[LE])
    assert get(own, None).status_code == 401  # a session is not a token
    client.logout()
    export_services.token_revoke(token=world.tokens[LE][0])
    assert get(own, lead_token).status_code == 401  # revoked
    assert ApiToken.objects.get(pk=world.tokens[LE][0].pk).revoked_at is not None
