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
