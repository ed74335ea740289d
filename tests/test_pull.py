"""`hogar pull` against a local app that answers as the Hugging Face Hub does (tests/fake_hub.py), serving real model
files: pull by quantization and by file, verified by sha256, resumed after the process is killed mid-download, a
corrupted file, a missing repo or file, a gated repo with and without a token, no network; then the library commands
and loading the pulled model by its reference."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hogar
from hogar.hub import library
from hogar.hub.pull import PullError, pull
from hogar.store import resolve_model
from tests.fake_hub import COMMIT, FakeHub, Repo

TINY = Path(__file__).resolve().parent / "fixtures" / "tiny"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def smollm2() -> Path:
    try:
        return Path(resolve_model("smollm2"))
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"SmolLM2 is not installed: {e}")


@pytest.fixture(scope="module")
def hub(smollm2: Path):
    repos = {
        "hogar-test/SmolLM2-135M-Instruct-GGUF": Repo({"SmolLM2-135M-Instruct-Q4_1.gguf": smollm2}),
        "hogar-test/tiny-qwen2-GGUF": Repo({"tiny-qwen2-Q8_0.gguf": TINY / "qwen2-q8_0.gguf",
                                            "tiny-qwen2-F16.gguf": TINY / "qwen2-f16.gguf",
                                            "README.md": TINY / "qwen2.json"}),
        "hogar-test/gated-GGUF": Repo({"tiny-qwen3-Q8_0.gguf": TINY / "qwen3-q8_0.gguf"}, gated=True),
        "hogar-test/bad-GGUF": Repo({"tiny-mistral-Q8_0.gguf": TINY / "mistral-nemo-q8_0.gguf"},
                                    wrong_sha={"tiny-mistral-Q8_0.gguf"}),
    }
    with FakeHub(repos) as h:
        yield h


@pytest.fixture
def env(hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"HF_ENDPOINT": hub.url, "HOGAR_MODELS": str(tmp_path / "models"), "HF_HOME": str(tmp_path / "hf")}
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    for k in ("HF_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(k, raising=False)
    hub.throttle = 0.0
    return {**os.environ, **values}


def test_pull_by_quant_loads_and_generates_as_the_original(env, hub: FakeHub, smollm2: Path) -> None:
    e = pull("hf.co/hogar-test/SmolLM2-135M-Instruct-GGUF:q4_1", progress=False)  # case-insensitive, hf.co/ prefix
    assert e.path == Path(env["HOGAR_MODELS"]) / "SmolLM2-135M-Instruct-Q4_1.gguf"
    assert _sha256(e.path) == _sha256(smollm2) == e.sha256
    assert (e.repo, e.revision, e.size) == ("hogar-test/SmolLM2-135M-Instruct-GGUF", COMMIT, smollm2.stat().st_size)
    ref = hogar.load("hogar-test/SmolLM2-135M-Instruct-GGUF:Q4_1", n_ctx=128)  # named by the reference
    own = hogar.load(smollm2, n_ctx=128)
    prompt = "Las tortugas del estanque"
    assert ref.generate(prompt, max_tokens=12, temperature=0).tokens == own.generate(prompt, max_tokens=12,
                                                                                      temperature=0).tokens
    assert library.by_name("SmolLM2-135M-Instruct-Q4_1").last_used is not None
    # a second pull of the same file downloads nothing
    n = len(hub.log)
    assert pull("hogar-test/SmolLM2-135M-Instruct-GGUF:Q4_1", progress=False).sha256 == e.sha256
    assert not [r for r in hub.log[n:] if "/resolve/" in r[1]]


def test_pull_by_file_and_default_quant(env) -> None:
    e = pull("hogar-test/tiny-qwen2-GGUF/tiny-qwen2-F16.gguf", progress=False)
    assert _sha256(e.path) == _sha256(TINY / "qwen2-f16.gguf")
    with pytest.raises(PullError, match=r"no Q4_K_M file; it offers F16, Q8_0"):
        pull("hogar-test/tiny-qwen2-GGUF", progress=False)
    with pytest.raises(PullError, match="no file nothere.gguf"):
        pull("hogar-test/tiny-qwen2-GGUF/nothere.gguf", progress=False)
    only = pull("hogar-test/gated-GGUF", progress=False) if os.environ.get("HF_TOKEN") else None
    assert only is None


def test_missing_repo_gated_repo_and_token(env, monkeypatch: pytest.MonkeyPatch, hub: FakeHub) -> None:
    with pytest.raises(PullError, match=r"no model repo hogar-test/nope-GGUF on the Hub"):
        pull("hogar-test/nope-GGUF:Q8_0", progress=False)
    with pytest.raises(PullError, match=r"hogar-test/gated-GGUF is gated: .* set HF_TOKEN"):
        pull("hogar-test/gated-GGUF:Q8_0", progress=False)
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(PullError, match=r"is gated: .* the token in HF_TOKEN has no access"):
        pull("hogar-test/gated-GGUF:Q8_0", progress=False)
    monkeypatch.setenv("HF_TOKEN", hub.token)
    e = pull("hogar-test/gated-GGUF", progress=False)  # the only GGUF file of the repo, without :QUANT
    assert _sha256(e.path) == _sha256(TINY / "qwen3-q8_0.gguf")


def test_corrupted_download_is_deleted_and_reported(env) -> None:
    with pytest.raises(PullError, match=r"does not match the Hub's hash .* the file was deleted"):
        pull("hogar-test/bad-GGUF:Q8_0", progress=False)
    models = Path(env["HOGAR_MODELS"])
    assert not (models / "tiny-mistral-Q8_0.gguf").exists()
    assert not list((models / ".partial").iterdir())
    assert library.entries() == []


def test_no_network(env, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.live_server import free_port

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(PullError, match="cannot reach the Hub"):
        pull("hogar-test/tiny-qwen2-GGUF:Q8_0", progress=False)


def test_killed_pull_resumes_with_a_range_request(env, hub: FakeHub, smollm2: Path) -> None:
    hub.throttle = 0.05  # the first download crawls, so that it can be killed halfway
    ref = "hogar-test/SmolLM2-135M-Instruct-GGUF:Q4_1"
    partial_dir = Path(env["HOGAR_MODELS"]) / ".partial"
    first = subprocess.Popen([sys.executable, "-m", "hogar", "pull", "-q", ref], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    got = 0
    while time.time() < deadline and got < 4 << 20:
        parts = list(partial_dir.glob("*.part")) if partial_dir.exists() else []
        got = parts[0].stat().st_size if parts else 0
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    dest = Path(env["HOGAR_MODELS"]) / "SmolLM2-135M-Instruct-Q4_1.gguf"
    assert got >= 4 << 20 and not dest.exists()
    hub.throttle = 0.0
    n = len(hub.log)
    done = subprocess.run([sys.executable, "-m", "hogar", "pull", "-q", ref], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    ranges = [r[2] for r in hub.log[n:] if "/resolve/" in r[1] and r[0] == "GET"]
    assert ranges and ranges[0] is not None and int(ranges[0][6:].split("-")[0]) >= got
    assert _sha256(dest) == _sha256(smollm2)
    assert "sha256 verified" in done.stdout


def test_library_commands(env) -> None:
    pull("hogar-test/tiny-qwen2-GGUF:Q8_0", progress=False)
    run = [sys.executable, "-m", "hogar"]
    listed = subprocess.run(run + ["list"], env=env, capture_output=True, text=True, timeout=60)
    line = next(x for x in listed.stdout.splitlines() if x.startswith("tiny-qwen2-Q8_0"))
    assert "hogar-test/tiny-qwen2-GGUF:Q8_0" in line
    shown = subprocess.run(run + ["show", "tiny-qwen2-Q8_0"], env=env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and COMMIT in shown.stdout and "qwen2" in shown.stdout
    refused = subprocess.run(run + ["rm", "tiny-qwen2-Q8_0"], env=env, capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL)
    assert refused.returncode == 1 and "add -y" in refused.stderr
    removed = subprocess.run(run + ["rm", "-y", "hogar-test/tiny-qwen2-GGUF:Q8_0"], env=env, capture_output=True,
                             text=True, timeout=60)
    assert removed.returncode == 0, removed.stderr
    assert not (Path(env["HOGAR_MODELS"]) / "tiny-qwen2-Q8_0.gguf").exists()
    missing = subprocess.run(run + ["run", "-m", "hogar-test/tiny-qwen2-GGUF:Q8_0", "-p", "hi"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "hogar pull hogar-test/tiny-qwen2-GGUF:Q8_0" in missing.stderr


def test_safetensors_repo_converted_and_quantized(env, hub: FakeHub, tmp_path: Path) -> None:
    """A safetensors repo with --quant: download, hogar convert, hogar quantize in one command; the same bytes as
    running the two tools on the checkpoint by hand (a SentencePiece vocabulary: the tiny BPE ones have no
    pre-tokenizer fingerprint a converter knows)."""
    from hogar.convert import convert
    from hogar.quantize import quantize_file

    src = TINY / "hf" / "phi3-spm"
    hub.repos["hogar-test/tiny-phi3"] = Repo({p.name: p for p in sorted(src.iterdir()) if p.is_file()})
    done = subprocess.run([sys.executable, "-m", "hogar", "pull", "-q", "hogar-test/tiny-phi3", "--quant", "q8_0"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    got = Path(env["HOGAR_MODELS"]) / "tiny-phi3-Q8_0.gguf"
    by_hand = tmp_path / "tiny-phi3"  # the repo's name, as `huggingface-cli download --local-dir` would leave it
    shutil.copytree(src, by_hand)
    f16 = convert(by_hand, tmp_path / "by-hand-f16.gguf", outtype="f16", progress=False)
    quantize_file(f16, tmp_path / "by-hand-q8_0.gguf", "Q8_0")
    assert _sha256(got) == _sha256(tmp_path / "by-hand-q8_0.gguf")
    assert not (Path(env["HOGAR_MODELS"]) / ".hf").exists() or not list((Path(env["HOGAR_MODELS"]) / ".hf").iterdir())
    model = hogar.load("hogar-test/tiny-phi3", n_ctx=64)
    assert model.args.arch == "phi3"


def test_search_lists_quantizations_sizes_and_fit(env, smollm2: Path) -> None:
    env = {**env, "HOGAR_MEMORY_LIMIT": "1G"}
    out = subprocess.run([sys.executable, "-m", "hogar", "search", "gguf"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "hogar-test/SmolLM2-135M-Instruct-GGUF" in out.stdout and "hogar-test/tiny-phi3" not in out.stdout
    line = next(x for x in out.stdout.splitlines() if "Q4_1" in x)
    assert f"{smollm2.stat().st_size / 2**30:.2f} GiB" in line and "fits" in line
    assert "hogar pull hogar-test/SmolLM2-135M-Instruct-GGUF:Q4_1" in line
    none = subprocess.run([sys.executable, "-m", "hogar", "search", "nothing-like-this"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert none.returncode == 0 and "no GGUF repos match" in none.stdout


def _split(src: Path, folder: Path, stem: str, n: int) -> list[Path]:
    """src as llama-gguf-split writes it in n parts (the metadata in the first, the tensors shared out in order)."""
    from gguf import GGUFValueType

    from hogar.gguf import writer
    from hogar.gguf.reader import GGUFFile

    gf = GGUFFile(src)
    names = list(gf.tensors)
    size = -(-len(names) // n)
    parts = []
    for i in range(n):
        mine = names[i * size : (i + 1) * size]
        split = [writer.encode_kv("split.no", GGUFValueType.UINT16, i),
                 writer.encode_kv("split.count", GGUFValueType.UINT16, n),
                 writer.encode_kv("split.tensors.count", GGUFValueType.INT32, len(names))]
        kvs = ([gf.kv_bytes(k) for k in gf.metadata] if i == 0 else []) + split
        path = folder / f"{stem}-{i + 1:05d}-of-{n:05d}.gguf"
        with open(path, "wb") as f:
            f.write(writer.encode_header(kvs, [(t, gf.tensors[t].shape, gf.tensors[t].type) for t in mine],
                                         gf.alignment))
            for t in mine:
                f.write(gf.tensor_bytes(t))
                f.write(bytes(-gf.tensors[t].n_bytes % gf.alignment))
        parts.append(path)
    gf.close()
    return parts


def test_split_model_fetched_whole_and_loaded_as_one(env, hub: FakeHub, smollm2: Path, tmp_path: Path) -> None:
    parts = _split(smollm2, tmp_path, "SmolLM2-135M-Instruct-Q4_1", 3)
    hub.repos["hogar-test/split-GGUF"] = Repo({p.name: p for p in parts})
    e = pull("hogar-test/split-GGUF:Q4_1", progress=False)
    assert e.path.name == "SmolLM2-135M-Instruct-Q4_1.gguf"
    assert _sha256(e.path) == _sha256(smollm2)  # merged back into the very file that was split
    assert not list((e.path.parent / ".partial").glob("*.gguf"))
    assert hogar.load("hogar-test/split-GGUF:Q4_1", n_ctx=64).args.arch == "llama"


def test_full_disk_is_one_line_and_nothing_half_written(env, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil as sh

    from hogar.hub import pull as pull_module

    real = sh.disk_usage
    monkeypatch.setattr(pull_module.shutil, "disk_usage", lambda p: real(p)._replace(free=1000))
    with pytest.raises(PullError, match=r"not enough disk space for tiny-qwen2-Q8_0.gguf: .* free some space"):
        pull("hogar-test/tiny-qwen2-GGUF:Q8_0", progress=False)
    assert not (Path(env["HOGAR_MODELS"]) / "tiny-qwen2-Q8_0.gguf").exists()
