"""An idle mesh: the CPU and memory of each of its processes while nothing uses it.

``mesh up``'s own code starts the whole mesh on free ports in a scratch folder and waits until
it is ready; after a settling pause, each process's share of a core is measured over a fixed
window. An idle service still answers the gateway's health check every second and makes the
polls it documents (each a second or more apart); beside the mesh, a bare server of the same
factory, which nobody calls, shows the floor. Aim: under 1% of a core per process.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench._canned import ECHO
from bench._tools import BENCH_ENV, Child, CpuMeter, rss_bytes, table
from gateway.mesh import Mesh
from gateway.settings import MeshSettings

AIM = 0.01


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--settle", type=float, default=5.0)
    args = parser.parse_args([] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as scratch:
        folder = Path(scratch)
        with (folder / "mesh.log").open("w") as log:
            mesh = Mesh(
                MeshSettings.on_free_ports(),
                data_dir=folder,
                out=log,
                env={**os.environ, **BENCH_ENV},
            )
            with mesh:
                bare = Child("bench._canned")
                try:
                    pids = {
                        name: mesh.supervisor.pid(name)
                        for name in ("users", "oms", "audit", "reflection", "gateway")
                    }
                    pids[f"bare server ({ECHO.split('/')[1]})"] = bare.pid
                    time.sleep(args.settle)
                    meter = CpuMeter(pids)
                    meter.start()
                    time.sleep(args.seconds)
                    shares = meter.stop()
                    memory = {name: rss_bytes(pid) for name, pid in pids.items()}
                finally:
                    bare.stop()
    rows = [
        [name, f"{shares[name] * 100:.2f}%", f"{memory[name] / 2**20:.1f}", _verdict(shares[name])]
        for name in pids
    ]
    print(f"an idle mesh over {args.seconds:g} s, {args.settle:g} s after it was ready")
    print(table(rows, ["process", "CPU (one core)", "RSS MiB", f"under {AIM:.0%}"]))


def _verdict(share: float) -> str:
    return "yes" if share < AIM else "NO"


if __name__ == "__main__":
    main(sys.argv[1:])
