"""The dataset card (README.md) of an export version, written so that no user text can become markup.

A hub renders this file as Markdown, often with raw HTML allowed, so every text a user wrote is made inert here:
the task's name and labels are escaped inline; the guidelines are quoted line by line, escaped; template texts and
the system message go into code fences longer than any backtick run they hold (CommonMark's rule, so a line of
backticks inside cannot close the fence); the split seed is a code span by the same rule; the YAML header quotes
its strings. Escaping backslash-escapes the ASCII punctuation that Markdown reads as syntax (every `<` and `[`
among it, so no HTML, autolink or link is left), which CommonMark shows as the character itself.
"""

import re
from collections.abc import Mapping

from annotate.models import Kind, OutputFormat
from annotate.rendering import TemplateSpec

from .formats import FORMATS
from .models import Export
from .trainers import trainer_section

# ASCII punctuation that starts or ends Markdown syntax (CommonMark, GFM tables and strikethrough, common math and
# attribute extensions). Left as they are, for a readable file: , ; : ? / % @ ' " which start no markup of their own
# (a `javascript:` stays text: without `[` or `<` there is no link to put it in).
_MARKDOWN_SYNTAX = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~&$=^])")
_BACKTICKS = re.compile(r"`+")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_WHITESPACE = re.compile(r"\s+")
_YAML_MARKUP = frozenset("<>&[]`")

SHAPES = {name: module.SHAPE for name, module in FORMATS.items()}


def markdown_escape(text: str) -> str:
    """`text` with every Markdown syntax character backslash-escaped: shown as written, never as markup."""
    return _MARKDOWN_SYNTAX.sub(r"\\\1", text)


def markdown_inline(text: str) -> str:
    """One line of escaped text (a heading, a list item): line breaks and runs of whitespace become one space."""
    return markdown_escape(_WHITESPACE.sub(" ", text).strip())


def markdown_quote(text: str) -> str:
    """`text` as a block quote of escaped lines, its line breaks kept (hard breaks) and its blank lines as paragraph
    breaks. Leading spaces become no-break spaces: four of them would otherwise start an indented code block."""
    lines = _LINE_BREAK.split(text.strip("\r\n"))
    out = []
    for position, line in enumerate(lines):
        # Blank: only whitespace of any kind (a renderer trims a paragraph's last line, no-break spaces included, and
        # a hard break would be left at its end as a visible backslash).
        if line.isspace() or not line:
            out.append(">")
            continue
        body = line.lstrip(" \t")
        escaped = "\u00a0" * (len(line) - len(body)) + markdown_escape(body.rstrip(" \t"))
        following = lines[position + 1] if position + 1 < len(lines) else ""
        last_of_paragraph = not following or following.isspace()
        out.append(f"> {escaped}" if last_of_paragraph else f"> {escaped}\\")  # a trailing backslash: a hard break
    return "\n".join(out)


def code_span(text: str) -> str:
    """`text` as inline code whose backtick string is longer than any run inside it (CommonMark); one space on each
    side, which the renderer takes off again, lets the text start or end with a backtick."""
    text = _WHITESPACE.sub(" ", text)
    ticks = "`" * (max((len(run) for run in _BACKTICKS.findall(text)), default=0) + 1)
    return f"{ticks} {text} {ticks}"


def fenced(title: str, text: str) -> str:
    """A titled code block whose fence is longer than any backtick run in `text` (at least three), so nothing in the
    text can close it. Line ends become \n: CommonMark reads \r as one too, and \r before the fence's own \n would
    merge with it."""
    text = _LINE_BREAK.sub("\n", text)
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{title}:\n\n{fence}text\n{text}\n{fence}\n\n"


def yaml_string(text: str) -> str:
    """`text` as a YAML double-quoted scalar that any YAML 1.1 or 1.2 parser reads back exactly: printable characters
    as they are; quotes, backslashes, control characters, line and paragraph separators and non-characters escaped.
    Markup characters (< > & [ ] `) are escaped too, so that a renderer that shows the header as Markdown (one that
    does not know front matter) finds no HTML or link in it either."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif char in _YAML_MARKUP:
            out.append(f"\\x{code:02x}")
        elif (
            0x20 <= code <= 0x7E
            or (0xA0 <= code <= 0xD7FF and code not in (0x2028, 0x2029))
            or (0xE000 <= code <= 0xFFFD and code != 0xFEFF)
            or code >= 0x10000
        ):
            out.append(char)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}")
    out.append('"')
    return "".join(out)


def _yaml_header(export: Export, counts: Mapping) -> str:
    """The card's metadata: a name, and the non-empty splits with their files, which `datasets.load_dataset(<folder>)`
    reads."""
    splits = [(split, f"{split}.jsonl") for split in ("train", "validation", "test") if counts.get(split)]
    data_files = "".join(f"      - split: {split}\n        path: {name}\n" for split, name in splits)
    return (
        f"---\npretty_name: {yaml_string(export.task.name)}\n"
        f"configs:\n  - config_name: default\n    data_files:\n{data_files}---\n"
    )


def _contamination_section(report: Mapping | None) -> str:
    """What the contamination check found: held-out prompts repeated in train (exactly or nearly)."""
    if not report:
        return "\nNo validation or test split: nothing was checked for contamination.\n"
    found = report["exact"] + report["near"]
    if not found:
        return (
            f"\nContamination check: none of the {report['held_out']} validation and test prompts appears again in "
            f"train, exactly or nearly (similarity ≥ {report['threshold']}).\n"
        )
    rows = "\n".join(
        f"| {pair['train']['id']} | {pair['held_out']['id']} | {pair['split']} | {pair['kind']} | "
        f"{pair['similarity']} |"
        for pair in report["pairs"]
    )
    return (
        f"\n**Contamination**: {report['exact']} train examples repeat a validation or test prompt exactly and "
        f"{report['near']} nearly (similarity ≥ {report['threshold']}); a model trained on them is graded on prompts "
        f"it saw. The first {len(report['pairs'])}:\n\n| train example | held-out example | split | kind | "
        f"similarity |\n| --- | --- | --- | --- | --- |\n{rows}\n"
    )


def _reasoning_section(export: Export) -> str:
    """What became of the reasoning annotators wrote apart from the answer, in tasks that ask for it."""
    if not export.task.asks_reasoning:
        return ""
    return (
        "\n**Reasoning.** This task asks annotators for the reasoning (chain of thought) apart from the final answer. "
        f"In `{export.format}`, {FORMATS[export.format].REASONING}.\n"
    )


def _preflight_section(report: Mapping | None) -> str:
    """Exact token figures from the trainer preflight, or a word that there were none."""
    if not report:
        return (
            "\n## Tokens\n\nNo tokenizer was set for this task: no exact token counts. (Pairsmith's dashboard shows "
            "an estimate, about ±15% for English prose.)\n"
        )
    rows = "\n".join(
        f"| {split} | {tally['examples']:,} | {tally['tokens']:,} | {tally['trained']:,} | {tally['longest']:,} "
        f"| {tally['over']:,} |"
        for split, tally in report["splits"].items()
    )
    over = report["over_length_examples"]
    listed = "".join(
        f"\n- example {item['id']} ({item['uuid']}), {item['split']}: {item['tokens']:,} tokens" for item in over
    )
    more = f"\n- … and {report['over_length'] - len(over):,} more" if report["over_length"] > len(over) else ""
    warning = f"\n> **Warning:** {markdown_escape(report['warning'])}\n" if report["warning"] else ""
    return f"""
## Tokens (trainer preflight)

Exact counts: every record rendered through the chat template of {code_span(report["tokenizer"])} and tokenized with
its tokenizer, as the trainer does. Trained on: {report["trained_share"]:.1%} of the tokens
({markdown_escape(report["trained_on"])}).
{warning}
| split | examples | tokens | trained tokens | longest | over {report["max_length"]:,} |
| --- | ---: | ---: | ---: | ---: | ---: |
{rows}

Examples longer than the maximum length of {report["max_length"]:,} tokens (the trainer truncates them; TRL's SFTConfig
`max_length` defaults to 1024): {report["over_length"]:,}.
{listed}{more}
"""


def _template_section(row: Mapping, spec: TemplateSpec) -> str:
    return (
        f"### Template version {row['version']} ({row['examples']} examples)\n\n"
        + fenced("Prompt format (prompt-completion)", spec.prompt_format)
        + fenced("Chat user message (openai-chat)", spec.chat_user_format)
        + fenced("Alpaca input", spec.alpaca_input_format)
        + (fenced("System message", spec.system_message) if spec.system_message else "")
    )


def dataset_card(
    *,
    export: Export,
    counts: Mapping,
    files: Mapping,
    templates: list[dict],
    changes: Mapping,
    base_version: int | None,
    specs: Mapping[int, TemplateSpec],
    contamination: Mapping | None = None,
    preflight: Mapping | None = None,
) -> str:
    """README.md of a version: what the task is, its template, counts, and how to load and use the files."""
    task = export.task
    splits = list(counts["by_kind"])  # train, validation, and test when the version has one
    kinds = sorted(set().union(*(counts["by_kind"][split] for split in splits)))
    kind_rows = "\n".join(
        f"| {kind} | " + " | ".join(str(counts["by_kind"][split].get(kind, 0)) for split in splits) + " |"
        for kind in kinds
    )
    split_rows = "\n".join(
        f"| {split} | `{split}.jsonl` | {counts[split]} | {files[f'{split}.jsonl']['size']} |" for split in splits
    )
    template_parts = "".join(_template_section(row, specs[row["version"]]) for row in templates)
    guidelines = markdown_quote(task.guidelines) if task.guidelines.strip() else "(no guidelines written)"
    labels = (
        "\n\nThe completion is one of these labels: " + ", ".join(markdown_inline(label) for label in task.labels) + "."
        if task.output_format == OutputFormat.LABEL and task.labels
        else ""
    )
    chosen = export.filters.get("kinds") or []
    kinds_text = "every kind" if len(chosen) == len(Kind.values) else "the kinds " + ", ".join(chosen)
    has_validation = counts["validation"] > 0
    loaded = {split: f"{split}.jsonl" for split in splits if counts[split]}
    empty = [f"{split}.jsonl" for split in splits if not counts[split]]
    data_files = "{" + ", ".join(f'"{split}": "{name}"' for split, name in loaded.items()) + "}"
    if empty:
        data_files += f"  # {' and '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty in this version"
    upload_validation = (
        'validation = client.files.create(file=open("validation.jsonl", "rb"), purpose="fine-tune")\n'
        if has_validation
        else ""
    )
    openai = (
        "Upload the files and start a fine-tuning job (OpenAI Python SDK):\n\n"
        "```python\nfrom openai import OpenAI\n\nclient = OpenAI()\n"
        'train = client.files.create(file=open("train.jsonl", "rb"), purpose="fine-tune")\n'
        + upload_validation
        + "client.fine_tuning.jobs.create(training_file=train.id, "
        + ("validation_file=validation.id, " if has_validation else "")
        + 'model="gpt-4o-mini-2024-07-18")\n```\n'
        if export.format == "openai-chat"
        else "OpenAI fine-tuning of chat models takes the `openai-chat` format: export this task again with "
        "`--format openai-chat`, then upload `train.jsonl` (and `validation.jsonl`) with "
        '`client.files.create(file=open("train.jsonl", "rb"), purpose="fine-tune")` and start '
        "`client.fine_tuning.jobs.create(training_file=…, validation_file=…, model=…)`.\n"
    )
    changes_text = (
        f"Compared with v{base_version}: {changes['added']} added, {changes['removed']} removed, "
        f"{changes['changed']} changed, {changes['moved']} moved between splits.\n"
        if base_version
        else "This is the first version of this task's export.\n"
    )
    return f"""{_yaml_header(export, counts)}
# {markdown_inline(task.name)} — training data v{export.version}

Exported by Pairsmith from task `{task.slug}` ({task.get_output_format_display()} output): only the examples a
reviewer approved, of {kinds_text}.

## The task

{guidelines}{labels}

## Format

`{export.format}`, one JSON object a line, no other keys: `{SHAPES[export.format]}`

Checked against the rules of {FORMATS[export.format].RULES} before it was written.

Each record was rendered through the template version its example was written with.
{_reasoning_section(export)}
{template_parts}
## Counts

| split | file | records | bytes |
| --- | --- | --- | --- |
{split_rows}

| kind | {" | ".join(splits)} |
| --- |{" --- |" * len(splits)}
{kind_rows}

{changes_text}
The split is deterministic: with u the first 8 bytes of sha256 of `"<seed>:<example uuid>"` read as a big-endian
integer over 2**64, an example is in validation when u < {export.validation_ratio}, in test when
{export.validation_ratio} ≤ u < {export.validation_ratio} + {export.test_ratio}, else in train
(seed {code_span(export.split_seed)}), so an example stays on its side from one version to the next while the seed and
the ratios stay. `manifest.json` lists every example's UUID and content hash per file, and the sha256 and size of each
file.
{_contamination_section(contamination)}{_preflight_section(preflight)}
## Load with Hugging Face `datasets`

```python
from datasets import load_dataset

dataset = load_dataset("json", data_files={data_files})
# or the whole folder, whose header above names the splits:
dataset = load_dataset("path/to/v{export.version}")
```

{trainer_section(export=export, splits=list(loaded))}
## Fine-tune with OpenAI

{openai}
## Download and verify

```sh
curl -fsS -H "Authorization: Bearer $PAIRSMITH_TOKEN" -O \\
  https://<pairsmith host>/api/tasks/{task.slug}/exports/v{export.version}/train.jsonl
sha256sum train.jsonl   # {files["train.jsonl"]["sha256"]}
```
"""
