"""What the gateway's check of REST bodies costs on a write, against the same without it.

``POST /api/v1/schemas/main/object-types`` with an object type of 20 properties, through the
real Envoy in front of a canned OMS that answers the recorded response (so the figures are the
gateway's, not the OMS's), once with the body check and once without (the ceiling). ``wrk``
drives both with 10 connections; beside them, the share of a core Envoy used, and from it
Envoy's CPU time per request, which is what the check adds (the canned OMS, in Python, limits
the rate of both runs alike).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bench._tools import CpuMeter, gateway_report, stack, wait_for, wrk
from oms.v1 import resources_pb2

PATH = "/api/v1/schemas/main/object-types"
METHOD = "/oms.v1.SchemaService/CreateObjectType"
PROPERTIES = 20


def _body() -> dict[str, object]:
    properties = [
        {
            "api_name": f"field{n}",
            "display_name": f"Field {n}",
            "description": "a property of the benchmark's object type",
            "data_type": {"base": "BASE_TYPE_STRING"},
            "required": n == 0,
        }
        for n in range(PROPERTIES)
    ]
    return {
        "api_name": "Benchmark",
        "display_name": "Benchmark",
        "primary_key": "field0",
        "properties": properties,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=10)
    args = parser.parse_args([] if argv is None else argv)
    body = json.dumps(_body())
    answer = resources_pb2.ObjectType(api_name="Benchmark", display_name="Benchmark")
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-write-") as scratch:
        folder = Path(scratch)
        recorded = folder / "object_type.bin"
        recorded.write_bytes(answer.SerializeToString())
        for label, checked in (("with the body check", True), ("without (ceiling)", False)):
            (folder / label).mkdir()
            canned = {"oms": {METHOD: recorded}}
            with stack(folder / label, ["users", "oms"], canned=canned, check_bodies=checked) as s:
                headers = {"Authorization": f"Bearer {s.login()}"}
                url = f"{s.url}{PATH}"
                wait_for(f"{s.url}/auth/validate", headers=headers)
                wrk(url, seconds=1, connections=args.connections, headers=headers, post=body)
                meter = CpuMeter({"envoy": s.pids["gateway"], "service": s.pids["oms"]})
                meter.start()
                load = wrk(
                    url, seconds=args.seconds, connections=args.connections, headers=headers,
                    post=body,
                )  # fmt: skip
                runs.append((label, load, meter.stop()))
    print(f"a {len(body):,}-byte object type of {PROPERTIES} properties per request")
    print(gateway_report(runs, "oms", seconds=args.seconds, connections=args.connections))
    spent = [cpu["envoy"] / load.requests_per_second * 1e6 for _, load, cpu in runs]
    print(
        f"Envoy's CPU per request: {spent[0]:.0f} us with the check, {spent[1]:.0f} us without;"
        f" the check costs {spent[0] - spent[1]:.0f} us ({spent[0] / spent[1]:.2f}x)"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
