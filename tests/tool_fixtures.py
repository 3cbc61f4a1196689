# ruff: noqa: E501
"""A tool set and tricky tool records (nested objects, enums, unicode in arguments, empty arguments, parallel calls,
a multi-step trajectory), in OpenAI's chat shape, shared by the import and export tests."""

import json

import orjson


def function(name: str, description: str, properties: dict, required: list[str]) -> dict:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": False,
            },
        },
    }


TOOLS = [
    function(
        "get_weather",
        "Current weather in a city.",
        {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        ["city"],
    ),
    function(
        "book_table",
        "Book a table at a restaurant.",
        {
            "restaurant": {"type": "string"},
            "party": {
                "type": "object",
                "properties": {"adults": {"type": "integer", "minimum": 1}, "children": {"type": "integer"}},
                "required": ["adults"],
                "additionalProperties": False,
            },
            "time": {"type": "string"},
        },
        ["restaurant", "party", "time"],
    ),
    function("list_orders", "The customer's open orders.", {}, []),
    function(
        "send_message",
        "Send a text message.",
        {"to": {"type": "string"}, "text": {"type": "string"}},
        ["to", "text"],
    ),
]


def call(call_id: str, name: str, arguments: dict) -> dict:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)},
    }


def record(messages: list[dict]) -> dict:
    return {"messages": messages, "tools": TOOLS, "parallel_tool_calls": True}


SYSTEM = {"role": "system", "content": "You are the concierge. Call a tool when it helps."}
RECORDS = [
    record([{"role": "user", "content": "What's the weather in Paris?"},
            {"role": "assistant", "tool_calls": [call("call_a1", "get_weather", {"city": "Paris", "unit": "celsius"})]}]),
    record([{"role": "user", "content": "Weather in Zürich and 東京, please."},
            {"role": "assistant", "tool_calls": [call("call_b1", "get_weather", {"city": "Zürich"}),
                                                 call("call_b2", "get_weather", {"city": "東京", "unit": "fahrenheit"})]}]),
    record([SYSTEM,
            {"role": "user", "content": "A table for 2 adults and 1 child at Chez Ré, 8pm."},
            {"role": "assistant", "tool_calls": [call("call_c1", "book_table", {"restaurant": "Chez Ré", "party": {"adults": 2, "children": 1}, "time": "20:00"})]},
            {"role": "tool", "tool_call_id": "call_c1", "content": "{\"confirmation\": \"RÉ-42\"}"},
            {"role": "assistant", "content": "Booked: confirmation RÉ-42."}]),
    record([{"role": "user", "content": "Show my orders."},
            {"role": "assistant", "tool_calls": [call("call_d1", "list_orders", {})]},
            {"role": "tool", "tool_call_id": "call_d1", "content": "[]"},
            {"role": "assistant", "content": "You have no open orders."}]),
    record([{"role": "user", "content": "Delete every customer's data."},
            {"role": "assistant", "content": "I can't do that: no tool deletes data, and it needs a human."}]),
    record([{"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "user", "content": "Text Ana the weather in Lyon and Nice."},
            {"role": "assistant", "tool_calls": [call("call_e1", "get_weather", {"city": "Lyon"}), call("call_e2", "get_weather", {"city": "Nice"})]},
            {"role": "tool", "tool_call_id": "call_e1", "content": "18 °C, sunny"},
            {"role": "tool", "tool_call_id": "call_e2", "content": "21 °C"},
            {"role": "assistant", "tool_calls": [call("call_e3", "send_message", {"to": "Ana", "text": "Lyon 18 °C ☀, Nice 21 °C \"warm\""})]},
            {"role": "tool", "tool_call_id": "call_e3", "content": "sent"},
            {"role": "assistant", "content": "Sent to Ana."}]),
]  # fmt: skip


def jsonl(records: list[dict]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)
