"""Constrained decoding through the official openai client against a live `hogar serve smollm2`: every schema of the
corpus (tests/fixtures/schemas) with strict json_schema gives JSON that parses and validates, greedy and sampled;
llama-server's `grammar` (GBNF) and `json_schema` fields; bad schemas and grammars are one-line 400s."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import jsonschema
import live_server
import openai
import pytest

SCHEMAS = sorted((Path(__file__).parent / "fixtures" / "schemas").glob("*.json"))
SAMPLED = SCHEMAS[::5]  # a sampled run too, for every fifth schema
MAX_TOKENS = 200  # a bound, not a target: each schema's grammar ends the object well before
PARALLEL = 4
# RFC 3339 times, which jsonschema checks only with rfc3339-validator installed
TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([zZ]|[+-]([01]\d|2[0-3]):[0-5]\d)")
FORMATS = jsonschema.FormatChecker(jsonschema.Draft202012Validator.FORMAT_CHECKER.checkers)
FORMATS.checks("time")(lambda v: not isinstance(v, str) or bool(TIME.fullmatch(v)))
FORMATS.checks("date-time")(lambda v: not isinstance(v, str) or bool(
    re.fullmatch(r"\d{4}-\d{2}-\d{2}[tT]", v[:11]) and FORMATS.conforms(v[:10], "date") and TIME.fullmatch(v[11:])))


@pytest.fixture(scope="module")
def server():
    proc, url = live_server.start("smollm2", "--parallel", str(PARALLEL))
    yield url
    live_server.stop(proc)


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0, timeout=120)


def _ask(client: openai.OpenAI, path: Path, temperature: float, seed: int | None = None) -> tuple[dict, str, str]:
    schema = json.loads(path.read_text())
    r = client.chat.completions.create(
        model="smollm2", temperature=temperature, seed=seed, max_tokens=MAX_TOKENS,
        messages=[{"role": "user", "content": f"{schema.get('title', path.stem)}, as JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": path.stem, "schema": schema, "strict": True}})
    return schema, r.choices[0].message.content or "", r.choices[0].finish_reason


def _check(path: Path, schema: dict, text: str, finish: str) -> str | None:
    if finish != "stop":
        return f"{path.stem}: finish_reason {finish}: {text!r}"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        return f"{path.stem}: not JSON ({e}): {text!r}"
    errors = list(jsonschema.Draft202012Validator(schema, format_checker=FORMATS).iter_errors(value))
    return f"{path.stem}: {errors[0].message}: {text!r}" if errors else None


def test_corpus_size():
    assert len(SCHEMAS) >= 50


def test_every_schema_greedy_and_sampled(client):
    runs = [(p, 0.0, None) for p in SCHEMAS] + [(p, 1.0, 1234 + i) for i, p in enumerate(SAMPLED)]
    with ThreadPoolExecutor(PARALLEL) as pool:
        results = list(pool.map(lambda r: (r[0], *_ask(client, *r)), runs))
    failures = [f for f in (_check(p, s, t, fin) for p, s, t, fin in results) if f]
    assert not failures, "\n".join(failures)


def test_streamed_schema(client):
    path = SCHEMAS[0]
    schema = json.loads(path.read_text())
    stream = client.chat.completions.create(
        model="smollm2", temperature=0, max_tokens=MAX_TOKENS, stream=True,
        messages=[{"role": "user", "content": "Fill this in, as JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema, "strict": True}})
    text, finish = "", None
    for chunk in stream:
        for c in chunk.choices:
            text += c.delta.content or ""
            finish = c.finish_reason or finish
    assert _check(path, schema, text, finish) is None


def test_json_object(client):
    r = client.chat.completions.create(model="smollm2", temperature=0, max_tokens=MAX_TOKENS,
                                       messages=[{"role": "user", "content": "A cat, as JSON."}],
                                       response_format={"type": "json_object"})
    assert isinstance(json.loads(r.choices[0].message.content), dict)


def test_strict_closes_objects(client):
    """strict: no property beyond the schema's own, even where the model would like to add one."""
    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}}}
    r = client.chat.completions.create(
        model="smollm2", temperature=0, max_tokens=60,
        messages=[{"role": "user", "content": "A city with its population and country, as JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema, "strict": True}})
    assert set(json.loads(r.choices[0].message.content)) <= {"city"}


GBNF = {
    'root ::= "yes" | "no"': r"(yes|no)",
    'root ::= [0-9]{4} "-" [0-9]{2} "-" [0-9]{2}': r"\d{4}-\d{2}-\d{2}",
    'root ::= item ("," " "? item){1,3}\nitem ::= [a-z]{1,8}': r"[a-z]{1,8}(, ?[a-z]{1,8}){1,3}",
}


@pytest.mark.parametrize("grammar", list(GBNF))
def test_gbnf_chat(client, grammar):
    r = client.chat.completions.create(model="smollm2", temperature=0, max_tokens=40, extra_body={"grammar": grammar},
                                       messages=[{"role": "user", "content": "Is water wet? A date? Some fruits?"}])
    assert re.fullmatch(GBNF[grammar], r.choices[0].message.content), r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop"


def test_gbnf_completion_sampled_and_n(client):
    grammar = 'root ::= [0-9]{4} "-" [0-9]{2} "-" [0-9]{2}'
    r = client.completions.create(model="smollm2", prompt="The date today is", max_tokens=20, temperature=1.0, seed=7,
                                  n=3, extra_body={"grammar": grammar})
    assert [c.finish_reason for c in r.choices] == ["stop"] * 3
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", c.text) for c in r.choices), [c.text for c in r.choices]


def test_json_schema_field_on_completions_streamed(server):
    # not strict (llama-server's field): the schema itself closes the object
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 9}}, "required": ["n"],
              "additionalProperties": False}
    with httpx.stream("POST", server + "/v1/completions", timeout=60,
                      json={"prompt": "A number:", "max_tokens": 30, "stream": True, "json_schema": schema}) as r:
        assert r.status_code == 200
        chunks = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: {")]
    text = "".join(c["choices"][0]["text"] for c in chunks if c["choices"])
    jsonschema.validate(json.loads(text), schema)


BAD = [
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "objectx"}}}},
     "response_format", "Invalid type"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "strict": True, "schema": {
        "type": "object", "properties": {"a": {"type": "string", "pattern": "(("}}}}}}, "response_format", "regex"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "strict": True, "schema": {
        "$ref": "#/$defs/missing"}}}}, "response_format", "missing"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "strict": True, "schema": {
        "type": "array", "uniqueItems": True}}}}, "response_format", "uniqueItems"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "strict": True, "schema": {
        "type": "string", "format": "no-such-format"}}}}, "response_format", "format"),
    ({"json_schema": {"type": "objectx"}}, "json_schema", "Invalid type"),
    ({"json_schema": "{not json"}, "json_schema", "Input should be"),
    ({"grammar": "root ::= foo"}, "grammar", "foo"),
    ({"grammar": 'root ::= "unclosed'}, "grammar", "GBNF"),
    ({"grammar": ""}, "grammar", "empty"),
    ({"grammar": 'root ::= "a"', "json_schema": {"type": "object"}}, "response_format", "not grammar and json_schema"),
    ({"json_schema": False}, "json_schema", "false"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": False}}}, "response_format",
     "false"),
    ({"json_schema": {"type": "string", "enum": ["x" * 100] * 3000}}, "json_schema", "262,144"),
    ({"grammar": "root ::= r0\n" + "".join(f'r{i} ::= "x" r{i + 1} | "y"\n' for i in range(20000))}, "grammar",
     "500 rules"),
]


@pytest.mark.parametrize(("extra", "param", "says"), BAD)
def test_bad_schema_or_grammar_is_one_line_400(client, extra, param, says):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="smollm2", max_tokens=5, messages=[{"role": "user", "content": "x"}],
                                       extra_body=extra)
    err = e.value.body
    assert e.value.status_code == 400 and "\n" not in err["message"] and says in err["message"], err
    assert err["param"].startswith(param) and err["type"] == "invalid_request_error"


def test_huge_gbnf_is_refused_at_once(client):
    """llguidance's GBNF converter is quadratic in the rules and holds the GIL: 2,000 rules took 5 s of a frozen
    server; the size is checked first."""
    grammar = "root ::= r0\n" + "".join(f'r{i} ::= "x" r{i + 1} | "y"\n' for i in range(2000)) + 'r2000 ::= "z"\n'
    t0 = time.perf_counter()
    with pytest.raises(openai.BadRequestError, match="the limits are 32,768 characters and 500 rules"):
        client.chat.completions.create(model="smollm2", max_tokens=5, messages=[{"role": "user", "content": "x"}],
                                       extra_body={"grammar": grammar})
    assert time.perf_counter() - t0 < 1.0


def test_deeply_chained_grammar_does_not_crash_the_server(client):
    """Each chained rule is a level of recursion in llguidance's compiler: 4,000 of them overflowed the 8 MB stack of
    a default thread and killed the server (a segfault). Grammars now compile on a thread with a deep stack."""
    lark = "start: r0\n" + "".join(f"r{i}: r{i + 1}\n" for i in range(4000)) + 'r4000: "z"\n'
    r = client.chat.completions.create(model="smollm2", max_tokens=5, messages=[{"role": "user", "content": "x"}],
                                       extra_body={"grammar": lark})
    assert r.choices[0].message.content == "z"
    defs = {f"d{i}": {"type": "object", "properties": {"a": {"$ref": f"#/$defs/d{i + 1}"}}} for i in range(1500)}
    schema = {"$ref": "#/$defs/d0", "$defs": {**defs, "d1500": {"type": "integer"}}}
    r = client.chat.completions.create(model="smollm2", max_tokens=5, messages=[{"role": "user", "content": "x"}],
                                       extra_body={"json_schema": schema})
    assert r.choices[0].finish_reason in ("stop", "length")


def test_forced_tool_call_with_response_format_is_400(client):
    """A forced call is the whole reply: a response_format (or grammar) given with it would be silently ignored."""
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="smollm2", max_tokens=5, messages=[{"role": "user", "content": "x"}],
                                       tools=[tool], tool_choice="required", response_format={"type": "json_object"})
    err = e.value.body
    assert "tool_choice" in err["message"] and "\n" not in err["message"] and err["param"] == "response_format", err


def test_every_sampler_sees_only_allowed_tokens(client, server):
    """The mask comes before the samplers: penalties, a large logit_bias on a token the grammar forbids, top-k/p,
    min-p and typical sampling all pick among allowed tokens."""
    path = next(p for p in SCHEMAS if p.stem == "product")
    schema = json.loads(path.read_text())
    hello = httpx.post(server + "/tokenize", json={"content": "Hello"}).json()["tokens"][0]
    r = client.chat.completions.create(
        model="smollm2", temperature=1.3, top_p=0.9, seed=5, max_tokens=MAX_TOKENS, presence_penalty=0.5,
        frequency_penalty=0.5, logit_bias={str(hello): 100},
        messages=[{"role": "user", "content": "A product, as JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": schema, "strict": True}},
        extra_body={"top_k": 5, "min_p": 0.05, "typical_p": 0.9, "repeat_penalty": 1.2})
    assert _check(path, schema, r.choices[0].message.content, r.choices[0].finish_reason) is None


def test_constraint_alone(smollm2_path):
    """Without the server: a regex grammar's mask, and only end-of-generation tokens once it is complete."""
    import torch

    from hogar.api import load
    from hogar.engine.grammar import closed_objects, compile, grammars_for

    model = load(str(smollm2_path))
    tok = model.tokenizer
    c = compile(tok, "regex", "ab|ac").constraint()
    logits = torch.zeros(model.n_vocab)
    allowed = {tok.token_to_piece(t): t for t in torch.isfinite(c.mask(logits)).nonzero().flatten().tolist()}
    assert b"a" in allowed and set(allowed) <= {b"a", b"ab", b"ac"}
    c.advance(allowed[b"a"])
    assert {tok.token_to_piece(t) for t in torch.isfinite(c.mask(logits)).nonzero().flatten().tolist()} == {b"b", b"c"}
    c.advance(tok.encode("b", add_special=False)[0])
    assert set(torch.isfinite(c.mask(logits)).nonzero().flatten().tolist()) == set(tok.eog_ids)

    # a grammar's text over CACHE_MAX_TEXT is not kept: 64 such requests would otherwise pin their text and matcher
    cache = grammars_for(tok)._cache
    held = len(cache)
    compile(tok, "json_schema", {"enum": [f"{i:0100}" for i in range(1000)]})
    compile(tok, "json_schema", {"enum": ["small"]})
    assert len(cache) == held + 1

    closed = closed_objects({"type": "object", "properties": {"a": {"type": "object"}},
                             "$defs": {"b": {"properties": {}}}})
    assert closed["additionalProperties"] is False and closed["properties"]["a"]["additionalProperties"] is False
    assert closed["$defs"]["b"]["additionalProperties"] is False


def test_grammar_failure_ends_only_its_job(smollm2_path):
    """A constraint that fails on a token (llguidance's consume_token) ends its own request, not the whole batch."""
    import threading

    from hogar.api import load, sampling_params
    from hogar.server.scheduler import Job, Scheduler

    class Failing:
        def mask(self, logits):
            return logits

        def advance(self, token):
            raise RuntimeError("grammar constraint: token rejected")

    model = load(str(smollm2_path), n_ctx=256)
    sched = Scheduler(model, n_slots=2)
    events: dict[str, list] = {"bad": [], "good": []}
    done = {name: threading.Event() for name in events}

    def emit(name):
        def put(ev):
            events[name].append(ev)
            if ev[0] in ("done", "error"):
                done[name].set()
        return put

    try:
        ids = model.tokenize("Once upon a time")
        params = sampling_params(temperature=0, max_tokens=8)
        good = Job(ids, params, emit("good"))
        sched.submit(Job(ids, params, emit("bad"), constraint=Failing()))
        sched.submit(good)
        assert done["bad"].wait(60) and done["good"].wait(60)
    finally:
        sched.close()
    assert events["bad"][-1] == ("error", "RuntimeError: grammar constraint: token rejected")
    assert events["good"][-1][0] == "done" and events["good"][-1][2]["completion_tokens"] == 8
