"""Builders and a client for talking to a real OMS in tests.

Also what tests and benchmarks use to call the OMS's service layer in-process: an
administrator's principal and :func:`commit_as_admin`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import field_mask_pb2

from common.auth import Principal
from oms.service import Edit, Force, OntologyService
from oms.store import CommitRecord
from oms.v1 import (
    action_service_pb2_grpc,
    branch_service_pb2_grpc,
    object_service_pb2_grpc,
    proposal_service_pb2_grpc,
    schema_service_pb2_grpc,
    tag_service_pb2_grpc,
)
from oms.v1 import branch_service_pb2 as bs
from oms.v1 import history_pb2 as h
from oms.v1 import resources_pb2 as r
from oms.v1 import schema_service_pb2 as ss
from tests.support.servers import RunningServer
from tests.support.tokens import TestSigner

ADMIN_PRINCIPAL = Principal(
    user_id="u1",
    username="admin",
    roles=("admin",),
    permissions=frozenset({"*"}),
    session_id="s",
    token_id="t",
    expires_ns=0,
)
"""An administrator as the service layer sees one, for tests that call it in-process."""


def commit_as_admin(
    service: OntologyService, branch: str, edits: Sequence[Edit], message: str
) -> CommitRecord:
    """Commit ``edits`` on ``branch`` as :data:`ADMIN_PRINCIPAL`, on its head, unforced.

    How tests and benchmarks that call the service in-process set up the state they are about.
    """
    return service.commit_changes(
        ADMIN_PRINCIPAL, branch, edits, message=message, expected_head="", force=Force()
    )


@dataclass
class Client:
    """Stubs on one channel, calling with an admin token unless told otherwise.

    The stubs are untyped, so what a call answers is ``Any``.
    """

    channel: grpc.Channel
    signer: TestSigner
    server: RunningServer

    def __post_init__(self) -> None:
        self.schema = schema_service_pb2_grpc.SchemaServiceStub(self.channel)
        self.branches = branch_service_pb2_grpc.BranchServiceStub(self.channel)
        self.proposals = proposal_service_pb2_grpc.ProposalServiceStub(self.channel)
        self.tags = tag_service_pb2_grpc.TagServiceStub(self.channel)
        self.objects = object_service_pb2_grpc.ObjectServiceStub(self.channel)
        self.actions = action_service_pb2_grpc.ActionServiceStub(self.channel)
        self.admin = self.metadata(("*",), username="admin")

    def metadata(
        self, permissions: Sequence[str] = ("*",), username: str = "alice"
    ) -> list[tuple[str, str]]:
        token = self.signer.mint(username=username, permissions=tuple(permissions))
        return [("authorization", f"Bearer {token}")]

    def create(self, branch: str, object_type: r.ObjectType, message: str = "") -> Any:
        return self.schema.CreateObjectType(
            ss.CreateObjectTypeRequest(branch=branch, object_type=object_type, message=message),
            metadata=self.admin,
            timeout=10,
        )

    def branch(self, name: str, source: str = "main", **kwargs: Any) -> Any:
        return self.branches.CreateBranch(
            bs.CreateBranchRequest(name=name, source=source, **kwargs),
            metadata=self.admin,
            timeout=10,
        )

    def head(self, branch: str) -> Any:
        return self.branches.GetBranch(
            bs.GetBranchRequest(name=branch), metadata=self.admin, timeout=10
        ).head

    def get(self, branch: str, api_name: str, revision: str = "") -> Any:
        return self.schema.GetObjectType(
            ss.GetObjectTypeRequest(branch=branch, api_name=api_name, revision=revision),
            metadata=self.admin,
            timeout=10,
        )

    def names(self, branch: str) -> list[str]:
        response = self.schema.ListObjectTypes(
            ss.ListObjectTypesRequest(branch=branch, page_size=1000),
            metadata=self.admin,
            timeout=10,
        )
        return sorted(o.api_name for o in response.object_types)

    def require_proposals(self, branch: str = "main") -> Any:
        """Turn on ``requires_proposal`` (off on ``main`` by default), as an admin with a reason."""
        return self.branches.UpdateBranch(
            bs.UpdateBranchRequest(
                branch=h.Branch(name=branch, requires_proposal=True),
                update_mask=field_mask_pb2.FieldMask(paths=["requires_proposal"]),
                reason="changes are reviewed",
            ),
            metadata=self.admin,
            timeout=10,
        )

    def merge(self, branch: str, target: str = "", **kwargs: Any) -> Any:
        return self.branches.MergeBranch(
            bs.MergeBranchRequest(branch=branch, target=target, **kwargs),
            metadata=self.admin,
            timeout=30,
        )


def prop(api_name: str, base: r.BaseType = r.BASE_TYPE_STRING, **kwargs: Any) -> r.Property:
    return r.Property(api_name=api_name, data_type=r.DataType(base=base), **kwargs)


def object_type(api_name: str, *extra: r.Property, **kwargs: Any) -> r.ObjectType:
    """An object type with an ``id`` primary key, a ``name`` and the ``extra`` properties."""
    return r.ObjectType(
        api_name=api_name,
        display_name=kwargs.pop("display_name", api_name),
        primary_key="id",
        title_property="name",
        properties=[prop("id", required=True), prop("name"), *extra],
        **kwargs,
    )
