"""``GET /api/v1/schemas/main/object-types/{name}`` through Envoy against its ceiling.

The ceiling is the same routes in front of a canned OMS answering the very response the real
one gave.

Both stacks run the real User Service (Envoy checks the bearer token against its keys). The
object type read has 20 properties. ``wrk`` drives each with 10 connections for a fixed time;
beside requests/s, p50 and p99, the share of a core Envoy and the OMS each used meanwhile.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import grpc

from bench._tools import drive_through_gateway, gateway_report, stack
from oms.v1 import resources_pb2, schema_service_pb2, schema_service_pb2_grpc

METHOD = "/oms.v1.SchemaService/GetObjectType"
NAME = "Employee"
PATH = f"/api/v1/schemas/main/object-types/{NAME}"


def object_type() -> resources_pb2.ObjectType:
    return resources_pb2.ObjectType(
        api_name=NAME,
        display_name="Employee",
        description="Someone the company employs",
        primary_key="employeeId",
        title_property="employeeId",
        properties=[
            resources_pb2.Property(
                api_name="employeeId" if i == 0 else f"field{i}",
                display_name=f"Field {i}",
                data_type=resources_pb2.DataType(base=resources_pb2.BASE_TYPE_STRING),
                required=i == 0,
            )
            for i in range(20)
        ],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=10)
    args = parser.parse_args([] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="bench-oms-") as scratch:
        folder = Path(scratch)
        (folder / "real").mkdir()
        with stack(folder / "real", ["users", "oms"]) as real:
            token = real.login()
            metadata = [("authorization", f"Bearer {token}")]
            with grpc.insecure_channel(real.target("oms")) as channel:
                schema = schema_service_pb2_grpc.SchemaServiceStub(channel)
                schema.CreateObjectType(
                    schema_service_pb2.CreateObjectTypeRequest(
                        branch="main", object_type=object_type()
                    ),
                    metadata=metadata,
                    timeout=30,
                )
                answer = schema.GetObjectType(
                    schema_service_pb2.GetObjectTypeRequest(branch="main", api_name=NAME),
                    metadata=metadata,
                    timeout=10,
                )
            assert len(answer.properties) == 20
            recorded = folder / "object-type.bin"
            recorded.write_bytes(answer.SerializeToString())
            measured = drive_through_gateway(
                real, PATH, token, "oms", seconds=args.seconds, connections=args.connections
            )
        (folder / "ceiling").mkdir()
        with stack(
            folder / "ceiling", ["users", "oms"], canned={"oms": {METHOD: recorded}}
        ) as canned:
            ceiling = drive_through_gateway(
                canned,
                PATH,
                canned.login(),
                "oms",
                seconds=args.seconds,
                connections=args.connections,
            )
    runs = [(f"GET .../object-types/{NAME}", *measured), ("ceiling (canned)", *ceiling)]
    print(gateway_report(runs, "oms", seconds=args.seconds, connections=args.connections))


if __name__ == "__main__":
    main(sys.argv[1:])
