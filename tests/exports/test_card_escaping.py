"""The dataset card (README.md) carries user text as text: a hub that renders cards with raw HTML allowed must find no
HTML, no link and no early end of a code fence in it, and its YAML header must read back exactly."""

import string

import pytest
import yaml
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from annotate.models import OutputFormat, PromptTemplate
from exports import card
from pairsmith.jobs import JobState

from .conftest import approve, build, version_folder

pytestmark = pytest.mark.django_db

# What a dataset hub does with a card: CommonMark with raw HTML on, GFM tables and strikethrough.
HUB = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])

HOSTILE_NAME = 'Parcels <img src=x onerror=alert(1)> [click](javascript:alert(2)) `x` # "quoted": yes <b>&amp;</b>'
HOSTILE_GUIDELINES = """# Be nice <script>alert(3)</script>

<div onmouseover="alert(4)">hover</div>

[a link](javascript:alert(5)) and ![img](javascript:alert(6)) and <javascript:alert(7)>
[ref]: javascript:alert(8)
Click [here][ref]. &lt;script&gt; &#60;b&#62; <!-- a comment -->
    indented <b>code</b>
- item *one* with <a href="javascript:alert(9)">a</a>
1. first
```
fenced <script>alert(10)</script>
```
<javascript:alert(11)> | table | row |
| --- | --- |
| <b>x</b> | y |
"""
FOUR_BACKTICKS = "Question: {instruction}\n````\n<script>alert(12)</script>\n````\nAnswer:\n"
SYSTEM = "You are <b>helpful</b>.\n```\n<img src=x onerror=alert(13)>\n``````"
LABELS = ["<b>yes</b>", "[no](javascript:alert(14))"]
SEED = "`<img src=x onerror=alert(15)>`"


def _tokens(text: str):
    """Every token of the rendered card, nested ones (inline children) included."""
    for token in HUB.parse(text):
        yield token
        yield from token.children or ()


def _assert_inert(text: str) -> None:
    tokens = list(_tokens(text))
    kinds = {token.type for token in tokens}
    assert not kinds & {"html_block", "html_inline"}, [t.content for t in tokens if t.type.startswith("html")]
    hrefs = [token.attrGet("href") for token in tokens if token.type == "link_open"]
    sources = [token.attrGet("src") for token in tokens if token.type == "image"]
    assert not hrefs and not sources, (hrefs, sources)
    html = HUB.render(text)
    for tag in ("<script", "<img", "<a ", "<div", "<b>"):
        assert tag not in html, tag


@pytest.fixture
def hostile_export(task, lead):
    task.name = HOSTILE_NAME
    task.guidelines = HOSTILE_GUIDELINES
    task.output_format = OutputFormat.LABEL
    task.labels = LABELS
    task.split_seed = SEED
    task.save()
    PromptTemplate.objects.filter(task=task).update(
        prompt_format=FOUR_BACKTICKS, chat_user_format="{instruction} ``` <b>", system_message=SYSTEM
    )
    approve(task, 20, completion="<b>yes</b>")
    export = build(task, export_format="openai-chat", user=lead, validation_ratio=0.3)
    assert export.state == JobState.SUCCEEDED, export.error
    return export


def _card_of(export) -> str:
    return (version_folder(export) / "README.md").read_text()


def test_no_user_text_becomes_html_or_a_link_in_the_card(hostile_export):
    _assert_inert(_card_of(hostile_export))


def test_template_texts_stay_inside_their_fences_exactly(hostile_export):
    fences = [token for token in HUB.parse(_card_of(hostile_export)) if token.type == "fence"]
    contents = [token.content for token in fences]
    assert FOUR_BACKTICKS + "\n" in contents  # the line of four backticks did not close the fence
    assert SYSTEM + "\n" in contents
    assert "{instruction} ``` <b>\n" in contents


def test_the_guidelines_read_as_written(hostile_export):
    """Quoted and escaped, the guidelines show every character the lead typed (whitespace aside)."""
    tokens = HUB.parse(_card_of(hostile_export))
    start = next(i for i, t in enumerate(tokens) if t.type == "heading_open" and tokens[i + 1].content == "The task")
    quote_end = next(i for i in range(start, len(tokens)) if tokens[i].type == "blockquote_close")
    shown = "".join(child.content for t in tokens[start + 3 : quote_end] for child in t.children or ())
    assert _visible(shown) == _visible(HOSTILE_GUIDELINES)


def test_the_name_labels_and_seed_show_as_text(hostile_export):
    tokens = HUB.parse(_card_of(hostile_export))
    title = next(tokens[i + 1] for i, t in enumerate(tokens) if t.type == "heading_open" and t.tag == "h1")
    assert title.children[0].content == f"{HOSTILE_NAME} — training data v1"
    shown = "".join(child.content for token in tokens for child in token.children or ())
    assert "The completion is one of these labels: <b>yes</b>, [no](javascript:alert(14))." in shown
    assert f"seed {SEED})" in shown


def test_the_yaml_header_reads_back_exactly_and_names_the_non_empty_splits(hostile_export):
    text = _card_of(hostile_export)
    assert text.startswith("---\n")
    header = yaml.safe_load(text.split("---\n", 2)[1])
    assert header["pretty_name"] == HOSTILE_NAME
    files = header["configs"][0]["data_files"]
    assert files == [{"split": "train", "path": "train.jsonl"}, {"split": "validation", "path": "validation.jsonl"}]


def test_the_yaml_header_leaves_out_an_empty_split(task, lead):
    approve(task, 5)
    export = build(task, user=lead, validation_ratio=0)
    header = yaml.safe_load(_card_of(export).split("---\n", 2)[1])
    assert header["configs"][0]["data_files"] == [{"split": "train", "path": "train.jsonl"}]


@pytest.mark.usefixtures("offline_hf")
def test_hf_datasets_loads_the_folder_through_the_card(hostile_export, tmp_path):
    """`load_dataset(<folder>)` reads the card's YAML header (a header it cannot parse would stop it)."""
    from datasets import load_dataset

    dataset = load_dataset(str(version_folder(hostile_export)), cache_dir=str(tmp_path / "hf-cache"))
    assert set(dataset) == {"train", "validation"}
    assert dataset["train"].num_rows == hostile_export.counts["train"]
    assert dataset["validation"].num_rows == hostile_export.counts["validation"]


# --- the escaping functions, on any text ----------------------------------------------------------------------------

# Text rich in what Markdown and HTML read as syntax, plus whitespace, line ends and some non-ASCII.
MARKUP = st.lists(
    st.sampled_from(
        [*string.punctuation, *"ab1 \t\n\r\x00", "javascript:", "<script>", "&lt;", "```", "    ", "é", "\u00a0"]
    ),
    max_size=40,
).map("".join)


def _visible(text: str) -> str:
    # markdown-it reads NUL as U+FFFD, like CommonMark; whitespace is where quoting may differ (no-break spaces).
    return "".join(char for char in text.replace("\x00", "\ufffd") if not char.isspace())


def _inline_text(tokens) -> str:
    return "".join(child.content for token in tokens for child in token.children or ())


@hypothesis_settings(max_examples=400, deadline=None)
@given(text=MARKUP)
def test_a_quoted_text_is_paragraphs_of_plain_text_showing_every_character(text):
    quoted = card.markdown_quote(text)
    tokens = HUB.parse(quoted)
    allowed = {"blockquote_open", "blockquote_close", "paragraph_open", "paragraph_close", "inline"}
    assert {token.type for token in tokens} <= allowed, quoted
    assert {c.type for t in tokens for c in t.children or ()} <= {"text", "softbreak", "hardbreak"}, quoted
    assert _visible(_inline_text(tokens)) == _visible(text)


@hypothesis_settings(max_examples=400, deadline=None)
@given(text=MARKUP)
def test_an_inline_text_is_one_line_of_plain_text(text):
    line = "# " + card.markdown_inline(text) + " — end"
    tokens = HUB.parse(line)
    assert [t.type for t in tokens] == ["heading_open", "inline", "heading_close"], line
    assert {c.type for c in tokens[1].children} == {"text"}, line
    assert _visible(_inline_text(tokens)) == _visible(text + "—end")


@hypothesis_settings(max_examples=400, deadline=None)
@given(text=MARKUP)
def test_a_fence_holds_any_text_exactly(text):
    fenced = card.fenced("Title", text) + "after"
    tokens = HUB.parse(fenced)
    fences = [token for token in tokens if token.type == "fence"]
    assert len(fences) == 1
    # CommonMark reads \r and \r\n as line ends too, and NUL as U+FFFD.
    expected = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "\ufffd") + "\n"
    assert fences[0].content == expected
    assert tokens[-2].content == "after"


@hypothesis_settings(max_examples=400, deadline=None)
@given(text=MARKUP)
def test_a_code_span_holds_any_text(text):
    tokens = HUB.parse("seed " + card.code_span(text) + " end")
    children = tokens[1].children
    assert [c.type for c in children] == ["text", "code_inline", "text"]
    expected = " ".join(text.replace("\x00", "\ufffd").split()) if text.strip() else None
    if expected is not None:
        assert children[1].content.strip() == expected


@hypothesis_settings(max_examples=400, deadline=None)
@given(text=st.text(max_size=80))
def test_a_yaml_string_reads_back_exactly(text):
    assert yaml.safe_load(f"pretty_name: {card.yaml_string(text)}\n") == {"pretty_name": text}
