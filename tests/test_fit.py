"""`hogar fit`: the memory estimate against the peak RSS of a real run that fills its context, the report, and a
load that cannot fit refused with the estimate (one line) instead of being killed for memory."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hogar.hub.fit import _parse_size, estimate

MEASURE = """
import sys, torch, hogar
n_ctx = int(sys.argv[2])
m = hogar.load(sys.argv[1], n_ctx=n_ctx)
ids = torch.randint(0, 1000, (n_ctx - 32,), generator=torch.Generator().manual_seed(0)).tolist()
m.engine.prefill(ids)
for i in range(16):
    m.engine.forward([5 + i], 0, len(ids) + i, keep=slice(-1, None))
status = open("/proc/self/status").read()  # VmHWM: this process's peak (ru_maxrss keeps the parent's across exec)
print(int(status.split("VmHWM:")[1].split()[0]) * 1024)
"""


@pytest.mark.parametrize("name", ["smollm2", "qwen2.5-coder-0.5b"])
def test_estimate_within_ten_percent_of_measured_rss(name: str) -> None:
    from hogar.store import resolve_model

    try:
        path = resolve_model(name)
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"{name}: {e}")
    n_ctx = 1024
    out = subprocess.run([sys.executable, "-c", MEASURE, str(path), str(n_ctx)], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    rss = int(out.stdout.split()[-1])
    est = estimate(path, n_ctx).total
    assert 0.9 <= est / rss <= 1.1, (est / 2**20, rss / 2**20)


def test_report_and_refusal(tmp_path) -> None:
    env = {**os.environ, "HOGAR_MEMORY_LIMIT": "300M"}
    run = [sys.executable, "-m", "hogar"]
    out = subprocess.run(run + ["fit", "smollm2", "-c", "2048"], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert "does NOT fit" in out.stdout and "available memory: 0.29 GiB" in out.stdout
    assert "no quantization of this model fits" in out.stdout or "largest quantization that fits" in out.stdout
    big = subprocess.run(run + ["fit", "smollm2"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "HOGAR_MEMORY_LIMIT": "64G"})
    assert "fits" in big.stdout and "largest quantization that fits at this context: F16" in big.stdout
    refused = subprocess.run(run + ["run", "smollm2", "-p", "hola", "-n", "4"], capture_output=True, text=True,
                             timeout=60, env=env)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "needs about" in refused.stderr and "0.29 GiB is available" in \
        refused.stderr


def test_parse_size() -> None:
    assert _parse_size("8G") == 8 << 30 and _parse_size("512MiB") == 512 << 20 and _parse_size("1000") == 1000
