"""A small tokenizer the tests train themselves with `tokenizers` (nothing downloaded), and chat templates for it."""

import orjson
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

SPECIALS = ["[UNK]", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"]
WORDS = (
    "question where is my parcel it arrives in days order shipped on monday the 1 2 3 4 5 6 7 8 9 0 : ? . , "
    "you are a helpful assistant answer hello hi"
)

# One message a block: the role's tag, its text, the end tag. The assistant's part is marked for the loss.
MARKED = (
    "{{ bos_token }}{% for m in messages %}{{ '<|' + m['role'] + '|>' }} "
    "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }} <|end|>{% endgeneration %}"
    "{% else %}{{ m['content'] }} <|end|>{% endif %} {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
UNMARKED = MARKED.replace("{% generation %}", "").replace("{% endgeneration %}", "")


def tokenizer_json() -> bytes:
    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    trainer = trainers.WordLevelTrainer(special_tokens=SPECIALS)
    tokenizer.train_from_iterator([WORDS] * 3, trainer)
    return tokenizer.to_str().encode()


def config_json(template: str = MARKED, **extra) -> bytes:
    return orjson.dumps(
        {
            "name_or_path": "tiny/word-level",
            "bos_token": {"content": "<s>"},
            "eos_token": "</s>",
            "chat_template": template,
            **extra,
        }
    )


def rendered(messages: list[dict]) -> tuple[str, list[str]]:
    """The MARKED template written out by hand (a second reading): the text and the parts trained on."""
    text, trained = "<s>", []
    for message in messages:
        body = f"{message['content']} <|end|>"
        text += f"<|{message['role']}|> {body} "
        if message["role"] == "assistant":
            trained.append(body)
    return text, trained


# A tool-calling template in the shape transformers documents: the tool set from `tools` (OpenAI function definitions),
# an assistant's calls from `tool_calls[].function` with the arguments as an object, results as `tool` messages that
# name their function. It refuses what a real tool template cannot read: no tools, arguments as a JSON string.
TOOLS_TEMPLATE = (
    "{% if tools is none %}{{ raise_exception('no tools were passed') }}{% endif %}"
    "{{ bos_token }}<|system|> tools: {% for t in tools %}{{ t['function']['name'] }} {% endfor %}<|end|> "
    "{% for m in messages %}{{ '<|' + m['role'] + '|>' }} "
    "{% if m['role'] == 'assistant' %}{% generation %}{% if m['content'] %}{{ m['content'] }} {% endif %}"
    "{% for c in m['tool_calls'] or [] %}"
    "{% if c['function']['arguments'] is not mapping %}{{ raise_exception('arguments must be an object') }}{% endif %}"
    "call {{ c['id'] }} {{ c['function']['name'] }} {{ c['function']['arguments'] | tojson }} {% endfor %}"
    "<|end|>{% endgeneration %}"
    "{% elif m['role'] == 'tool' %}{{ m['tool_call_id'] }} {{ m['name'] }} {{ m['content'] }} <|end|>"
    "{% else %}{{ m['content'] }} <|end|>{% endif %} {% endfor %}"
)


def rendered_tools(record: dict) -> tuple[str, list[str]]:
    """TOOLS_TEMPLATE written out by hand for an OpenAI-style tool record (a second reading): text, trained parts."""
    text = "<s><|system|> tools: " + "".join(t["function"]["name"] + " " for t in record["tools"]) + "<|end|> "
    names = {}
    trained = []
    for message in record["messages"]:
        if message["role"] == "assistant":
            body = f"{message['content']} " if message.get("content") else ""
            for call in message.get("tool_calls", []):
                names[call["id"]] = call["function"]["name"]
                arguments = json_text(orjson.loads(call["function"]["arguments"]))
                body += f"call {call['id']} {call['function']['name']} {arguments} "
            body += "<|end|>"
            trained.append(body)
        elif message["role"] == "tool":
            body = f"{message['tool_call_id']} {names[message['tool_call_id']]} {message['content']} <|end|>"
        else:
            body = f"{message['content']} <|end|>"
        text += f"<|{message['role']}|> {body} "
    return text, trained


def json_text(value) -> str:
    """What the sandbox's `tojson` writes (json.dumps, characters as they are): written here with the json module."""
    import json

    return json.dumps(value, ensure_ascii=False)
