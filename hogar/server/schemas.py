"""Request bodies of the OpenAI API (and llama-server's extras), validated strictly: a wrong type or a value out of
range is a 400 with a message naming the field, never a 500. Unknown fields are accepted and ignored, as OpenAI
clients send some (user, service_tier...)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_N = 8  # choices per request


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class StreamOptions(_Body):
    include_usage: bool = False


class JsonSchemaFormat(_Body):
    name: str | None = None
    description: str | None = None
    schema_: dict[str, Any] | bool | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Body):
    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: JsonSchemaFormat | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")  # llama-server: json_object with a schema


class Constrained(_Body):
    """What the output must match: OpenAI's response_format, or llama-server's `grammar` (GBNF; Lark when it starts
    with %llguidance) and `json_schema`."""

    response_format: ResponseFormat | None = None
    grammar: str | None = None
    json_schema: dict[str, Any] | bool | None = None

    def constraint_spec(self) -> tuple[str, Any, bool] | None:
        """(kind, spec, strict) for hogar.engine.grammar.compile, or None; ValueError when they conflict."""
        fmt = self.response_format
        wanted = [name for name, on in (("grammar", self.grammar is not None),
                                        ("json_schema", self.json_schema is not None),
                                        ("response_format", fmt is not None and fmt.type != "text")) if on]
        if len(wanted) > 1:
            raise ValueError(f"give one of grammar, json_schema and response_format, not {' and '.join(wanted)}")
        if self.grammar is not None:
            return "gbnf", self.grammar, False
        if self.json_schema is not None:
            return "json_schema", self.json_schema, False
        if fmt is None or fmt.type == "text":
            return None
        if fmt.type == "json_object":
            return ("json_schema", fmt.schema_, False) if fmt.schema_ is not None else ("json_object", None, False)
        js = fmt.json_schema
        if js is None:
            raise ValueError("response_format json_schema needs its json_schema object ({name, schema, strict})")
        if js.schema_ is None:
            return "json_object", None, False
        return "json_schema", js.schema_, bool(js.strict)


class Sampling(_Body):
    model: str | None = None
    temperature: float | None = Field(default=None, ge=0.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    top_k: int | None = None
    min_p: float | None = Field(default=None, ge=0.0, le=1.0)
    typical_p: float | None = Field(default=None, ge=0.0, le=1.0)
    seed: int | None = None
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    repeat_penalty: float | None = Field(default=None, gt=0.0)
    repeat_last_n: int | None = Field(default=None, ge=-1)
    logit_bias: dict[str, float] | None = None
    stop: str | list[str] | None = None
    max_tokens: int | None = Field(default=None, ge=0)
    n: int = Field(default=1, ge=1, le=MAX_N)
    stream: bool = False
    stream_options: StreamOptions | None = None
    ignore_eos: bool = False

    @field_validator("logit_bias")
    @classmethod
    def _bias_keys(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        for key in v or {}:
            if not key.lstrip("-").isdigit():
                raise ValueError(f"logit_bias keys must be token ids, got {key!r}")
        return v

    @field_validator("stop")
    @classmethod
    def _stops(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and any(not s for s in v):
            raise ValueError("stop strings must not be empty")
        return v

    def sampling(self, max_tokens: int | None) -> dict[str, Any]:
        """Options for hogar's SamplingParams (unset ones keep llama.cpp's defaults, as llama-server does)."""
        out: dict[str, Any] = {
            k: getattr(self, k)
            for k in ("temperature", "top_p", "top_k", "min_p", "typical_p", "seed", "presence_penalty",
                      "frequency_penalty", "repeat_penalty", "repeat_last_n", "stop", "ignore_eos")
            if getattr(self, k) is not None
        }
        if self.logit_bias:
            out["logit_bias"] = {int(k): v for k, v in self.logit_bias.items()}
        out["max_tokens"] = -1 if max_tokens is None else max_tokens
        return out


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[dict[str, Any]] | None = None  # an assistant's calls; checked by validate_messages
    tool_call_id: str | None = None  # a tool result: the call it answers
    name: str | None = None


class ChatRequest(Sampling, Constrained):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=0)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    tools: list[dict[str, Any]] | None = None  # functions (hogar.tools) and file_search (hogar.server.docs_api)
    tool_choice: str | dict[str, Any] | None = None  # checked by hogar.tools.plan
    parallel_tool_calls: bool | None = None
    # vLLM's and llama-server's: unset, a conversation ending with an assistant message is continued (Continue buttons)
    continue_final_message: bool | None = None
    add_generation_prompt: bool | None = None


class CompletionRequest(Sampling, Constrained):
    prompt: str | list[str] | list[int] | list[list[int]]
    logprobs: int | None = Field(default=None, ge=0, le=20)
    echo: bool = False
    max_tokens: int | None = Field(default=16, ge=0)  # OpenAI's default for completions


class EmbeddingRequest(_Body):
    model: str | None = None
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"  # base64: little-endian float32, the openai package's


class TokenizeRequest(_Body):
    content: str
    add_special: bool = False
    parse_special: bool = True


class DetokenizeRequest(_Body):
    tokens: list[int]


# ---- the documents API (OpenAI Files and Vector Stores) ---------------------------------------------------------

class VectorStoreCreate(_Body):
    name: str | None = Field(default=None, max_length=256)
    file_ids: list[str] | None = None
    metadata: dict[str, str] | None = None
    chunking_strategy: dict[str, Any] | None = None  # accepted; hogar chunks by its own rule
    expires_after: dict[str, Any] | None = None  # accepted; hogar's stores do not expire


class VectorStoreUpdate(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=256)
    metadata: dict[str, str] | None = None
    expires_after: dict[str, Any] | None = None


class VectorStoreFileCreate(_Body):
    file_id: str
    attributes: dict[str, Any] | None = None
    chunking_strategy: dict[str, Any] | None = None


class FileBatchCreate(_Body):
    file_ids: list[str] | None = None
    files: list[VectorStoreFileCreate] | None = None
    attributes: dict[str, Any] | None = None
    chunking_strategy: dict[str, Any] | None = None


class RankingOptions(_Body):
    ranker: str | None = None
    score_threshold: float | None = Field(default=None, ge=0.0)


class VectorStoreSearch(_Body):
    query: str | list[str]
    max_num_results: int = Field(default=10, ge=1, le=50)
    rewrite_query: bool = False  # accepted; the query is searched as given
    filters: dict[str, Any] | None = None  # accepted and ignored
    ranking_options: RankingOptions | None = None
    mode: Literal["hybrid", "vector", "keyword"] = "hybrid"  # hogar's extra
