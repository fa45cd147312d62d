"""Run a group of processes as one: prefixed logs, start-up checks, and a clean, bounded stop.

Each child gets its own session so a Ctrl-C in the terminal reaches only the supervisor, which
then stops the children in reverse start order (the gateway before the services it fronts):
SIGTERM, a bounded wait, then SIGKILL for any that are still there. On Linux each child also
asks the kernel for SIGTERM when the supervisor dies, so a supervisor killed with SIGKILL leaves
no services behind holding their ports.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TextIO

_EXEC_WITH_PARENT_DEATH_SIGNAL = """
import ctypes, os, signal, sys
PR_SET_PDEATHSIG = 1
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
    sys.exit(f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(ctypes.get_errno())}")
if os.getppid() != int(sys.argv[1]):
    sys.exit("the supervisor exited before this process started")
os.execvp(sys.argv[2], sys.argv[2:])
"""
"""Set the parent-death signal, then become the real program (the setting survives exec).

Done in a tiny Python process rather than in ``preexec_fn``, which is unsafe once the
supervisor has threads (its log pumps). The ``getppid`` check closes the race in which the
supervisor died before the setting was in place. The kernel sends the signal when the *thread*
that started the child ends, so children must be started from a thread that lives as long as
the supervisor (``mesh up`` starts them from its main thread)."""


class StartError(RuntimeError):
    """The group could not start; the message names the process or port at fault."""


@dataclass(frozen=True, kw_only=True)
class ProcessSpec:
    """One process of the group: its name (the log prefix), command, environment, and ports."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    ports: Sequence[int] = ()


@dataclass
class _Running:
    spec: ProcessSpec
    process: subprocess.Popen[bytes]
    pump: threading.Thread


def port_is_free(port: int, host: str = "0.0.0.0") -> bool:  # noqa: S104 - probing, not serving
    """Whether ``port`` can be listened on; the wildcard address collides with any listener."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR so sockets in TIME_WAIT from a previous run do not count as taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports the kernel considers free right now."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class Supervisor:
    """Starts processes, copies their output line by line with a name prefix, stops them all."""

    out: TextIO
    stop_timeout: float = 10.0
    """Total seconds to wait for the group to exit after SIGTERM before SIGKILL."""
    name_width: int = 10
    """Width of the name column of the log prefix, so the lines of all processes align."""
    _running: list[_Running] = field(default_factory=list)
    _write_lock: threading.Lock = field(default_factory=threading.Lock)

    def check_ports(self, specs: Sequence[ProcessSpec]) -> None:
        """Fail, naming the port and its process, if any port the specs need is taken."""
        for spec in specs:
            for port in spec.ports:
                if not port_is_free(port):
                    raise StartError(f"port {port} needed by {spec.name} is already in use")

    def start(self, specs: Sequence[ProcessSpec]) -> None:
        """Check the specs' ports, then start each process in order."""
        self.check_ports(specs)
        for spec in specs:
            self._start_one(spec)

    def restart(self, name: str, *, signum: int = signal.SIGTERM) -> None:
        """Start ``name`` again with the same spec.

        If it is still running, it is stopped first (with ``signum``).
        """
        index = next(i for i, r in enumerate(self._running) if r.spec.name == name)
        old = self._running.pop(index)
        _signal(old.process, signum)
        self._reap(old, time.monotonic() + self.stop_timeout)
        self._start_one(old.spec)
        self._running.insert(index, self._running.pop())

    def _start_one(self, spec: ProcessSpec) -> None:
        program = shutil.which(spec.argv[0], path=spec.env.get("PATH", os.defpath))
        if program is None:
            raise StartError(f"{spec.name} could not be started: {spec.argv[0]} not found")
        try:
            process = subprocess.Popen(  # noqa: S603 - argv built by the caller, no shell
                _tied_to_this_process([program, *spec.argv[1:]]),
                env=dict(spec.env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise StartError(f"{spec.name} could not be started: {exc}") from exc
        assert process.stdout is not None
        pump = threading.Thread(
            target=self._pump, args=(spec.name, process.stdout), name=f"log-{spec.name}"
        )
        pump.daemon = True
        pump.start()
        self._running.append(_Running(spec, process, pump))

    def _pump(self, name: str, stream: IO[bytes]) -> None:
        prefix = f"{name:<{self.name_width}} | "
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            self.say(prefix + line)
        stream.close()

    def say(self, line: str) -> None:
        """Write one whole line, never interleaved with a child's."""
        with self._write_lock:
            self.out.write(line + "\n")
            self.out.flush()

    def exited(self) -> tuple[str, int] | None:
        """The first process that has exited, with its exit code (negative: killed by signal)."""
        for running in self._running:
            code = running.process.poll()
            if code is not None:
                return running.spec.name, code
        return None

    def pid(self, name: str) -> int:
        for running in self._running:
            if running.spec.name == name:
                return running.process.pid
        raise KeyError(name)

    def wait_until(
        self, ready: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.1
    ) -> None:
        """Poll ``ready`` until true; fail if a process exits first or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            gone = self.exited()
            if gone is not None:
                name, code = gone
                raise StartError(f"{name} exited with code {code} while waiting for {what}")
            if ready():
                return
            if time.monotonic() >= deadline:
                raise StartError(f"timed out after {timeout:g}s waiting for {what}")
            time.sleep(interval)

    def watch(self, stop: threading.Event, *, interval: float = 1.0) -> tuple[str, int] | None:
        """Block until ``stop`` is set (None) or a process exits (its name and code).

        It looks once a second: ``mesh up`` itself does no more than that while the mesh idles.
        """
        while not stop.wait(interval):
            gone = self.exited()
            if gone is not None:
                return gone
        return None

    def stop(self) -> None:
        """SIGTERM all (the last started first), wait (bounded), SIGKILL stragglers."""
        deadline = time.monotonic() + self.stop_timeout
        for running in reversed(self._running):
            _signal(running.process, signal.SIGTERM)
        for running in reversed(self._running):
            self._reap(running, deadline)
        self._running.clear()

    def _reap(self, running: _Running, deadline: float) -> None:
        """Wait for an exit until ``deadline``, then SIGKILL; drain the last of its output."""
        try:
            running.process.wait(timeout=max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            self.say(f"{running.spec.name} did not stop in {self.stop_timeout:g}s; killing it")
            _signal(running.process, signal.SIGKILL)
            running.process.wait(timeout=5)
        running.pump.join(timeout=2)


def _tied_to_this_process(argv: list[str]) -> list[str]:
    """``argv`` run so that it gets SIGTERM if this process dies first (Linux only)."""
    if not sys.platform.startswith("linux"):
        return argv
    guard = [sys.executable, "-I", "-S", "-c", _EXEC_WITH_PARENT_DEATH_SIGNAL]
    return [*guard, str(os.getpid()), *argv]


def _signal(process: subprocess.Popen[bytes], signum: int) -> None:
    """Signal the child's whole process group, so a child's own children go too."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)
