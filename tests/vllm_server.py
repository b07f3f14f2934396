"""One real vLLM OpenAI-compatible server for a whole test session.

`vllm_server()` is a generator for a session-scoped fixture: it starts `deploy/vllm/serve.sh` (the same
flags an operator uses) on a free port, waits until the server answers, yields its base URL and stops
the whole process group (API server, engine core and worker) at the end. A missing `.venv-vllm` is a
failure, never a skip: run `deploy/vllm/setup_venv.sh`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("HEEDFUL_VLLM_VENV", ROOT / ".venv-vllm"))
MODEL_DIR = Path(os.environ.get("HEEDFUL_VLLM_MODEL_DIR", ROOT / "var" / "models" / "smollm2-hf"))
SERVE = ROOT / "deploy" / "vllm" / "serve.sh"
SERVED_MODEL = "SmolLM2-135M-Instruct"
# First start compiles the model (torch.compile, cached under ~/.cache/vllm afterwards): 254-275 s were
# measured here on a busy 2-core machine, 60-90 s on an idle one.
READY_TIMEOUT_S = float(os.environ.get("HEEDFUL_VLLM_READY_TIMEOUT_S", "420"))
SETUP_HINT = "run `deploy/vllm/setup_venv.sh` (creates .venv-vllm and var/models/smollm2-hf)"


def vllm_server() -> Iterator[str]:
    """Yields `http://127.0.0.1:<port>` of a ready vLLM server serving SmolLM2-135M-Instruct."""
    if not (VENV / "bin" / "python").is_file():
        pytest.fail(f"no vLLM venv at {VENV}: {SETUP_HINT}", pytrace=False)
    if not (MODEL_DIR / "config.json").is_file():
        pytest.fail(f"no converted model at {MODEL_DIR}: {SETUP_HINT}", pytrace=False)
    port = _free_port()
    log = tempfile.NamedTemporaryFile(prefix="vllm-server-", suffix=".log", delete=False)  # noqa: SIM115
    # Its own process group: vLLM forks an engine core and a worker, and all of them must go at the end.
    process = subprocess.Popen(
        ["bash", str(SERVE), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(process, base_url, Path(log.name))
        yield base_url
    finally:
        _stop(process)
        log.close()


def _wait_ready(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"vLLM server exited with {process.returncode} while starting:\n{_tail(log)}")
        try:
            models = httpx.get(f"{base_url}/v1/models", timeout=2.0)
            if models.status_code == 200 and SERVED_MODEL in models.text:
                return
        except httpx.HTTPError:
            pass  # not listening yet
        time.sleep(1.0)
    pytest.fail(f"vLLM server not ready after {READY_TIMEOUT_S:.0f} s (log {log}):\n{_tail(log)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the group, time to shut down cleanly (shared memory, sockets), then SIGKILL for the rest."""
    _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline and _signal_group(process.pid, 0):
        process.poll()  # reaps the leader, so an exited group stops answering
        time.sleep(0.5)
    _signal_group(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _signal_group(pgid: int, sig: int) -> bool:
    """True while any process of the group is left to receive `sig`."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
