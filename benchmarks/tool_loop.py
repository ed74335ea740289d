"""A tool-calling agent loop against a running `hogar serve`, through each of the three APIs with their official
clients: the model is asked something only a tool can answer, calls the tool, gets the result, and answers. Prints a
transcript. The answering turn offers no tool (tool_choice none / no tools): with the tools still offered, the
Qwen2.5-Coder models call the tool again instead of answering (the same prompt, greedy, without hogar's server does
the same), so `--keep-tools` shows that.

  .venv/bin/hogar serve qwen2.5-coder-1.5b --port 8080 &
  .venv/bin/python benchmarks/tool_loop.py --url http://127.0.0.1:8080 [--model qwen2.5-coder-1.5b]
"""

from __future__ import annotations

import argparse
import json

QUESTION = "What is the weather in Lisbon right now?"
WEATHER = {"city": "Lisbon", "temperature_c": 21, "sky": "sunny", "wind_kmh": 12}
KEEP_TOOLS = False
SCHEMA = {"type": "object", "properties": {"city": {"type": "string", "description": "the city's name"}},
          "required": ["city"]}


def get_weather(city: str) -> dict:
    return {**WEATHER, "city": city}


def openai_loop(url: str, model: str) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=url + "/v1", api_key="unused")
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city",
                                               "parameters": SCHEMA}}]
    messages: list = [{"role": "user", "content": QUESTION}]
    print(f"user: {QUESTION}")
    r = client.chat.completions.create(model=model, messages=messages, tools=tools, temperature=0, max_tokens=200)
    msg = r.choices[0].message
    print(f"assistant (finish_reason={r.choices[0].finish_reason}): tool_calls="
          f"{[(c.function.name, c.function.arguments) for c in msg.tool_calls or []]} content={msg.content!r}")
    messages.append(msg.model_dump(exclude_none=True))
    for call in msg.tool_calls or []:
        result = get_weather(**json.loads(call.function.arguments))
        print(f"tool {call.function.name} -> {json.dumps(result)}")
        messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})
    r = client.chat.completions.create(model=model, messages=messages, tools=tools, temperature=0, max_tokens=200,
                                       tool_choice="auto" if KEEP_TOOLS else "none")
    print(f"assistant (finish_reason={r.choices[0].finish_reason}): {r.choices[0].message.content}")


def ollama_loop(url: str, model: str) -> None:
    import ollama

    client = ollama.Client(host=url)
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city",
                                               "parameters": SCHEMA}}]
    messages: list = [{"role": "user", "content": QUESTION}]
    print(f"user: {QUESTION}")
    r = client.chat(model=model, messages=messages, tools=tools, options={"temperature": 0, "num_predict": 200})
    calls = r.message.tool_calls or []
    print(f"assistant (done_reason={r.done_reason}): tool_calls="
          f"{[(c.function.name, dict(c.function.arguments)) for c in calls]} content={r.message.content!r}")
    messages.append(r.message)
    for c in calls:
        result = get_weather(**c.function.arguments)
        print(f"tool {c.function.name} -> {json.dumps(result)}")
        messages.append({"role": "tool", "tool_name": c.function.name, "content": json.dumps(result)})
    r = client.chat(model=model, messages=messages, tools=tools if KEEP_TOOLS else None,
                    options={"temperature": 0, "num_predict": 200})
    print(f"assistant (done_reason={r.done_reason}): {r.message.content}")


def anthropic_loop(url: str, model: str) -> None:
    import anthropic

    client = anthropic.Anthropic(base_url=url, api_key="unused")
    tools = [{"name": "get_weather", "description": "Current weather in a city", "input_schema": SCHEMA}]
    messages: list = [{"role": "user", "content": QUESTION}]
    print(f"user: {QUESTION}")
    r = client.messages.create(model=model, max_tokens=200, messages=messages, tools=tools,
                               extra_body={"temperature": 0})
    uses = [b for b in r.content if b.type == "tool_use"]
    print(f"assistant (stop_reason={r.stop_reason}): "
          f"{[(b.name, b.input) if b.type == 'tool_use' else b.text for b in r.content]}")
    messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in r.content]})
    results = []
    for b in uses:
        result = get_weather(**b.input)
        print(f"tool {b.name} -> {json.dumps(result)}")
        results.append({"type": "tool_result", "tool_use_id": b.id, "content": json.dumps(result)})
    messages.append({"role": "user", "content": results})
    r = client.messages.create(model=model, max_tokens=200, messages=messages, tools=tools,
                               tool_choice={"type": "auto" if KEEP_TOOLS else "none"}, extra_body={"temperature": 0})
    print(f"assistant (stop_reason={r.stop_reason}): {' '.join(b.text for b in r.content if b.type == 'text')}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--model", default="qwen2.5-coder-1.5b")
    p.add_argument("--keep-tools", action="store_true", help="offer the tools on the answering turn too")
    a = p.parse_args()
    global KEEP_TOOLS
    KEEP_TOOLS = a.keep_tools
    for name, loop in (("OpenAI (openai package)", openai_loop), ("Ollama (ollama package)", ollama_loop),
                       ("Anthropic (anthropic package)", anthropic_loop)):
        print(f"--- {name}")
        loop(a.url, a.model)


if __name__ == "__main__":
    main()
