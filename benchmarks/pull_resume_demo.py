"""A pull killed halfway and resumed, against tests/fake_hub.py serving Qwen2.5-Coder-0.5B's real file (there is no
network here): prints the partial file's size at the kill, the range the second pull asked for, and `hogar list`.

    .venv/bin/python benchmarks/pull_resume_demo.py
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HOGAR_MODELS", str(ROOT / ".venv" / "models"))

from hogar.store import resolve_model  # noqa: E402
from tests.fake_hub import FakeHub, Repo  # noqa: E402

REF = "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF:q4_k_m"


def main() -> int:
    src = Path(resolve_model("qwen2.5-coder-0.5b"))
    models = Path(tempfile.mkdtemp())
    repo = Repo({"qwen2.5-coder-0.5b-instruct-q4_k_m.gguf": src})
    with FakeHub({"Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF": repo}) as hub:
        env = {**os.environ, "HF_ENDPOINT": hub.url, "HOGAR_MODELS": str(models)}
        hub.throttle = 0.02
        print(f"$ hogar pull {REF}   (killed with SIGKILL after 150 MiB)")
        first = subprocess.Popen([sys.executable, "-m", "hogar", "pull", "-q", REF], env=env)
        partial = models / ".partial"
        while True:
            parts = list(partial.glob("*.part")) if partial.exists() else []
            if parts and parts[0].stat().st_size > 150 << 20:
                break
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
        print(f"partial file after the kill: {parts[0].stat().st_size} bytes")
        hub.throttle = 0.0
        n = len(hub.log)
        t0 = time.time()
        print(f"$ hogar pull {REF}")
        done = subprocess.run([sys.executable, "-m", "hogar", "pull", "-q", REF], env=env)
        ranges = [r[2] for r in hub.log[n:] if "/resolve/" in r[1]]
        print(f"exit {done.returncode} after {time.time() - t0:.1f} s; range requests: {ranges}")
        print(subprocess.run([sys.executable, "-m", "hogar", "list"], env=env, capture_output=True, text=True).stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
