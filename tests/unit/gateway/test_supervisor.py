"""The supervisor with real child processes: prefixed output, start checks, bounded stop."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.supervisor import ProcessSpec, StartError, Supervisor, free_ports, port_is_free
from tests.support.waiting import eventually

PY = sys.executable
ROOT = Path(__file__).resolve().parents[3]


def spec(name: str, code: str, ports: tuple[int, ...] = ()) -> ProcessSpec:
    return ProcessSpec(name=name, argv=[PY, "-c", code], env={"PYTHONUNBUFFERED": "1"}, ports=ports)


def test_output_is_prefixed_with_the_process_name() -> None:
    out = io.StringIO()
    supervisor = Supervisor(out=out)
    supervisor.start([spec("alpha", "print('one'); print('two')"), spec("b", "print('three')")])
    eventually(lambda: out.getvalue().count("\n") >= 3, timeout=10, what="three lines")
    supervisor.stop()
    lines = out.getvalue().splitlines()
    assert "alpha      | one" in lines
    assert "alpha      | two" in lines
    assert "b          | three" in lines


def test_a_taken_port_is_named_before_anything_starts() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        assert not port_is_free(port)
        supervisor = Supervisor(out=io.StringIO())
        with pytest.raises(StartError, match=f"port {port} needed by web is already in use"):
            supervisor.start([spec("web", "import time; time.sleep(30)", ports=(port,))])
        assert supervisor.exited() is None


def test_waiting_fails_fast_when_a_process_exits() -> None:
    supervisor = Supervisor(out=io.StringIO())
    supervisor.start([spec("crasher", "raise SystemExit(3)")])
    with pytest.raises(StartError, match="crasher exited with code 3 while waiting for readiness"):
        supervisor.wait_until(lambda: False, timeout=30, what="readiness")
    supervisor.stop()


def test_waiting_is_bounded() -> None:
    supervisor = Supervisor(out=io.StringIO())
    supervisor.start([spec("sleeper", "import time; time.sleep(30)")])
    with pytest.raises(StartError, match="timed out"):
        supervisor.wait_until(lambda: False, timeout=0.3, what="never")
    supervisor.stop()


def test_stop_kills_a_child_that_ignores_sigterm() -> None:
    out = io.StringIO()
    supervisor = Supervisor(out=out, stop_timeout=0.5)
    stubborn = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    supervisor.start([spec("stubborn", stubborn)])
    eventually(lambda: "ready" in out.getvalue(), timeout=10, what="the child is ready")
    pid = supervisor.pid("stubborn")
    supervisor.stop()
    assert "stubborn did not stop in 0.5s; killing it" in out.getvalue()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_restart_runs_the_same_process_again() -> None:
    supervisor = Supervisor(out=io.StringIO())
    supervisor.start([spec("svc", "import time; time.sleep(30)")])
    first = supervisor.pid("svc")
    supervisor.restart("svc")
    assert supervisor.pid("svc") != first
    assert supervisor.exited() is None
    supervisor.stop()


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5
    assert all(port_is_free(port) for port in ports)


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_children_stop_when_the_supervisor_is_killed() -> None:
    """SIGKILL gives the supervisor no chance to stop anything; the kernel must do it."""
    supervisor_code = (
        "import io, sys, time\n"
        "from gateway.supervisor import ProcessSpec, Supervisor\n"
        "supervisor = Supervisor(out=io.StringIO())\n"
        "child = [sys.executable, '-c', 'import time; time.sleep(60)']\n"
        "supervisor.start([ProcessSpec(name='child', argv=child, env={})])\n"
        "print(supervisor.pid('child'), flush=True)\n"
        "time.sleep(60)\n"
    )
    supervisor = subprocess.Popen(
        [PY, "-c", supervisor_code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert supervisor.stdout is not None
        child = int(supervisor.stdout.readline())
        eventually(
            lambda: b"time.sleep(60)" in Path(f"/proc/{child}/cmdline").read_bytes(),
            timeout=10,
            what="the child becomes its program",
        )
    finally:
        supervisor.send_signal(signal.SIGKILL)
        supervisor.wait(timeout=10)
    eventually(lambda: not _running(child), timeout=10, what="the child dies with its supervisor")


def test_a_missing_program_is_named() -> None:
    supervisor = Supervisor(out=io.StringIO())
    missing = ProcessSpec(name="ghost", argv=["/nonexistent/ghost"], env={})
    with pytest.raises(StartError, match="ghost could not be started: /nonexistent/ghost not"):
        supervisor.start([missing])
    assert supervisor.exited() is None
