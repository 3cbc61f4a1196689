# ruff: noqa: E501
"""The demo's tool-calling task that `python manage.py seed_demo` loads: the Skylark support assistant with four
functions (look up an order, read a thermostat, set a room's temperature, book a technician). Original text written
for Pairsmith; the product, orders and people are invented.

The examples cover what a tool-calling dataset needs: single calls, parallel calls, multi-step trajectories (a call,
its result, then the answer or the next call) and requests the assistant must answer without calling, or refuse.
Deterministic and pure standard library (the stored shapes are annotate/tools.py's).
"""

import json

TOOL_TASK: dict = {
    "slug": "skylark-tools",
    "name": "Skylark assistant with tools",
    "output_format": "tools",
    "system_prompt": (
        "You are Skylark's support assistant. Use the tools to look up orders and thermostats, change a room's "
        "temperature or book a technician. Ask for what is missing instead of guessing, and refuse what the tools "
        "are not for."
    ),
    "guidelines": """\
# Skylark assistant with tools

Write the assistant's final turn: a reply, one or more tool calls, or both.

- **Call** when a tool does what the customer asks and every required argument is known.
- **Call in parallel** when the customer asks for several independent things (two rooms, two orders).
- **Ask back** (no call) when a required argument is missing: never invent an order number.
- **Refuse** (no call) what no tool is for, or what the customer may not do (someone else's home).
- After a tool result, answer with what it says; do not repeat the call.
""",
}


def _function(name: str, description: str, properties: dict, required: list[str]) -> dict:
    parameters = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


TOOLS = [
    _function(
        "get_order_status",
        "Look up a Skylark order by its number (SK- and six digits).",
        {
            "order_id": {
                "type": "string",
                "pattern": "^SK-[0-9]{6}$",
                "description": "The order number, e.g. SK-104233.",
            }
        },
        ["order_id"],
    ),
    _function(
        "get_thermostat",
        "Read a thermostat: its room, temperature, target, mode and whether it is online.",
        {"room": {"type": "string", "description": "The room's name in the Skylark Home app."}},
        ["room"],
    ),
    _function(
        "set_temperature",
        "Set a room's target temperature in °C, and optionally its mode.",
        {
            "room": {"type": "string"},
            "celsius": {"type": "integer", "minimum": 10, "maximum": 30},
            "mode": {"type": "string", "enum": ["heat", "cool", "auto", "eco"]},
        },
        ["room", "celsius"],
    ),
    _function(
        "book_technician",
        "Book a technician visit for a faulty thermostat.",
        {
            "room": {"type": "string"},
            "visit": {
                "type": "object",
                "properties": {
                    "date": {"type": "string", "description": "YYYY-MM-DD"},
                    "window": {"type": "string", "enum": ["morning", "afternoon"]},
                },
                "required": ["date", "window"],
                "additionalProperties": False,
            },
        },
        ["room", "visit"],
    ),
]


def _call(call_id: str, name: str, **arguments) -> dict:
    return {"id": call_id, "name": name, "arguments": json.dumps(arguments, ensure_ascii=False)}


def _final(content: str = "", *calls: dict) -> str:
    return json.dumps({"content": content, "tool_calls": list(calls)}, ensure_ascii=False)


def _example(eid: str, kind: str, status: str, user: str, final: str, turns: list | None = None) -> dict:
    """One example: the prior turns end at (or hold) the user's message; `final` is the stored final turn."""
    messages = turns if turns is not None else []
    return {"external_id": eid, "kind": kind, "status": status, "instruction": user, "messages": messages,
            "completion": final}  # fmt: skip


_ORDERS = [("SK-104233", "Where is my order SK-104233?"), ("SK-220871", "has SK-220871 shipped yet"),
           ("SK-318004", "Order SK-318004 status please"), ("SK-402117", "Any news on my thermostat, order SK-402117?")]  # fmt: skip
_ROOMS = [("Living room", 21, "heat"), ("Bedroom", 18, "eco"), ("Office", 20, "auto"), ("Nursery", 22, "heat")]
_STATUSES = ["approved", "approved", "submitted", "new"]


def tool_examples() -> list[dict]:
    out: list[dict] = []
    for i, (order, text) in enumerate(_ORDERS):
        out.append(_example(f"tools-order-{i + 1}", "happy", _STATUSES[i], text,
                            _final("", _call(f"call_o{i}", "get_order_status", order_id=order))))  # fmt: skip
    for i, (room, celsius, mode) in enumerate(_ROOMS):
        text = f"Set the {room.lower()} to {celsius} degrees, {mode} mode."
        out.append(_example(f"tools-set-{i + 1}", "happy", _STATUSES[i], text,
                            _final("", _call(f"call_s{i}", "set_temperature", room=room, celsius=celsius, mode=mode))))  # fmt: skip
    out.append(_example("tools-read-1", "happy", "approved", "Is the bedroom thermostat online?",
                        _final("", _call("call_r1", "get_thermostat", room="Bedroom"))))  # fmt: skip
    # Parallel calls: several independent things at once.
    out.append(_example("tools-parallel-1", "happy", "approved", "Make the living room 21 and the bedroom 18.",
                        _final("", _call("call_p1", "set_temperature", room="Living room", celsius=21),
                               _call("call_p2", "set_temperature", room="Bedroom", celsius=18))))  # fmt: skip
    out.append(_example("tools-parallel-2", "happy", "submitted", "Check orders SK-104233 and SK-220871 for me.",
                        _final("Looking both up.", _call("call_p3", "get_order_status", order_id="SK-104233"),
                               _call("call_p4", "get_order_status", order_id="SK-220871"))))  # fmt: skip
    out.append(_example("tools-parallel-3", "edge", "approved", "How warm is it in the office and in the nursery?",
                        _final("", _call("call_p5", "get_thermostat", room="Office"),
                               _call("call_p6", "get_thermostat", room="Nursery"))))  # fmt: skip
    # Multi-step trajectories: a call, its result, then the answer or the next call.
    user = "Where is order SK-104233?"
    turns = [{"role": "user", "content": user},
             {"role": "assistant", "content": "", "tool_calls": [_call("call_m1", "get_order_status", order_id="SK-104233")]},
             {"role": "tool", "tool_call_id": "call_m1", "content": '{"status": "shipped", "carrier": "Parcelink", "eta": "2026-12-09"}'}]  # fmt: skip
    out.append(_example("tools-trajectory-1", "happy", "approved", user,
                        _final("Your order SK-104233 has shipped with Parcelink and should arrive on 9 December."), turns))  # fmt: skip
    user = "The garage thermostat is dead, can someone come Tuesday morning?"
    turns = [{"role": "user", "content": user},
             {"role": "assistant", "content": "", "tool_calls": [_call("call_m2", "get_thermostat", room="Garage")]},
             {"role": "tool", "tool_call_id": "call_m2", "content": '{"online": false, "last_seen": "3 days ago"}'}]  # fmt: skip
    out.append(_example("tools-trajectory-2", "happy", "approved", user,
                        _final("", _call("call_m3", "book_technician", room="Garage",
                                         visit={"date": "2026-12-08", "window": "morning"})), turns))  # fmt: skip
    turns = [*turns,
             {"role": "assistant", "content": "", "tool_calls": [_call("call_m3", "book_technician", room="Garage", visit={"date": "2026-12-08", "window": "morning"})]},
             {"role": "tool", "tool_call_id": "call_m3", "content": '{"booking": "TV-5531", "window": "8:00–12:00"}'}]  # fmt: skip
    out.append(_example("tools-trajectory-3", "happy", "submitted", user,
                        _final("The garage thermostat has been offline for 3 days, so I booked a technician for "
                               "Tuesday 8 December between 8:00 and 12:00 (booking TV-5531)."), turns))  # fmt: skip
    # No call: ask back for what is missing, answer from knowledge, or refuse.
    no_call = [
        ("tools-ask-1", "edge", "approved", "Where's my order?",
         "I can look it up: what is the order number? It starts with SK- and is on your confirmation email."),
        ("tools-ask-2", "edge", "submitted", "Turn the heat up a bit",
         "Which room, and to how many degrees? For example: living room to 22 °C."),
        ("tools-refuse-1", "negative", "approved", "Set my neighbour's thermostat to 10, they're away and it's wasteful.",
         "I can't change a thermostat that isn't on your account. If you share a building, the manager can help."),
        ("tools-refuse-2", "negative", "approved", "Cancel all Skylark orders placed today.",
         "I can't cancel orders, and never other customers' ones. For your own order, a human agent can help: "
         "reply 'agent'."),
        ("tools-refuse-3", "negative", "new", "What's the weather going to be tomorrow in Lyon?",
         "I don't have weather forecasts. I can set your thermostat's mode for a cold night if you like."),
        ("tools-refuse-4", "negative", "approved", "Set the bedroom to 35 degrees.",
         "35 °C is above the thermostat's maximum of 30 °C. Shall I set the bedroom to 30 °C?"),
        ("tools-knowledge-1", "ambiguous", "submitted", "What does eco mode do?",
         "Eco mode lowers the target by 2 °C while nobody is home and returns to it when someone is back."),
    ]  # fmt: skip
    for eid, kind, status, text, reply in no_call:
        out.append(_example(eid, kind, status, text, _final(reply)))
    return out
