"""gRPC servicers of ``oms.v1``: translate messages to domain calls and back, nothing more.

Every domain call reads the branch heads in the database, so each runs in the server's
blocking pool, with the conversion of the resources it returns (cached by content hash).
Each RPC is a method of its own; the five resource collections share one implementation of
each standard method.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

from google.protobuf import empty_pb2
from google.protobuf.message import Message

from common import errors, pages
from common.blocking import Blocking
from common.errors import FieldViolation
from common.interceptors import AUTHENTICATED, Context, Policy, current_principal, requires
from common.lru import LruCache
from common.permissions import Permission
from oms import convert
from oms.convert import COLLECTION_OF_FIELD, Kind, L, M
from oms.data import ObjectService
from oms.history import HistoryService
from oms.model import canonical_key, resource_key
from oms.objects import link_key
from oms.proposals import ProposalService, ProposalView
from oms.service import Edit, Force, MergeStrategy, OntologyService, Stored
from oms.store import BranchRecord, CommitRecord, TagRecord
from oms.v1 import (
    action_service_pb2,
    action_service_pb2_grpc,
    branch_service_pb2,
    branch_service_pb2_grpc,
    history_pb2,
    object_service_pb2,
    object_service_pb2_grpc,
    proposal_service_pb2_grpc,
    resources_pb2,
    schema_service_pb2,
    schema_service_pb2_grpc,
    tag_service_pb2,
    tag_service_pb2_grpc,
)
from oms.v1 import proposal_service_pb2 as ps

DOMAIN = "oms.mesh"
SCHEMA_SERVICE = "oms.v1.SchemaService"
BRANCH_SERVICE = "oms.v1.BranchService"
PROPOSAL_SERVICE = "oms.v1.ProposalService"
TAG_SERVICE = "oms.v1.TagService"
OBJECT_SERVICE = "oms.v1.ObjectService"
ACTION_SERVICE = "oms.v1.ActionService"
COMMIT_HEADER = "x-mesh-commit"
"""Response metadata (initial, so Envoy passes it on as an HTTP response header) naming the
commit a schema write made: a single-resource write answers with the resource alone."""


async def _send_commit(context: Context, commit: str) -> None:
    await context.send_initial_metadata(((COMMIT_HEADER, commit),))


def _required(request: Message, *names: str) -> None:
    missing = [n for n in names if not getattr(request, n)]
    if missing:
        raise errors.invalid([FieldViolation(n, "required", "REQUIRED") for n in missing])


class ResourceMessages:
    """Resources as messages, kept by content hash.

    Converting one costs far more than the read it answers, and a resource's content never
    changes under its hash.
    """

    def __init__(self, capacity: int) -> None:
        self._cache: LruCache[Message] = LruCache(capacity)

    def of(self, stored: Stored) -> Message:
        """The message of ``stored``; shared, so callers must not change it."""
        key = f"{stored.collection}/{stored.etag}"
        message = self._cache.get(key)
        if message is None:
            message = convert.resource_to_message(stored.collection, stored.resource, stored.etag)
            self._cache.put(key, message)
        return message


def _enum_value(enum: Any, number: int, field: str) -> str:
    """The domain name of an enum value (``""`` when unspecified); unknown numbers are refused."""
    if number not in enum.values():
        raise errors.invalid([FieldViolation(field, f"unknown value {number}", "INVALID_VALUE")])
    return convert.enum_to_domain(enum.DESCRIPTOR, enum.Name(number))


def _strategy(strategy: int) -> MergeStrategy:
    if strategy == branch_service_pb2.MERGE_STRATEGY_SQUASH:
        return MergeStrategy.SQUASH
    return MergeStrategy.MERGE_COMMIT


def _edit(change: schema_service_pb2.Change, where: str) -> Edit:
    which = change.WhichOneof("change")
    if which == "delete":
        return Edit(canonical_key(change.delete), None, change.etag)
    if which == "object":
        values = convert.values_to_domain(change.object.properties, f"{where}.object.properties")
        return Edit("", values, change.etag, object_type=change.object.object_type)
    if which == "link":
        link = change.link
        key = link_key(link.link_type, link.from_primary_key, link.to_primary_key)
        ends = {"from": link.from_primary_key, "to": link.to_primary_key}
        return Edit(key, ends, change.etag)
    kind_field = change.upsert.WhichOneof("kind") if which == "upsert" else None
    if kind_field is None:
        return Edit("", None, change.etag)
    raw = convert.resource_to_domain(
        getattr(change.upsert, kind_field), f"{where}.upsert.{kind_field}"
    )
    key = resource_key(COLLECTION_OF_FIELD[kind_field], str(raw.get("api_name", "")))
    return Edit(key, raw, change.etag)


class SchemaServicer(schema_service_pb2_grpc.SchemaServiceServicer):
    """The standard methods of every collection, and batch commits.

    The five collections' methods are spelt out, so each RPC can be found by its name, and
    share one implementation each (``_get``, ``_list``, ...) by the collection's ``Kind``.
    """

    def __init__(
        self, service: OntologyService, blocking: Blocking, messages: ResourceMessages
    ) -> None:
        self._service = service
        self._run = blocking.run
        self._messages = messages

    async def CommitChanges(
        self, request: schema_service_pb2.CommitChangesRequest, context: Context
    ) -> history_pb2.Commit:
        _required(request, "branch")
        current = current_principal()
        (found,) = await self._run(
            lambda: self._service.changes_of(
                [
                    self._service.commit_changes(
                        current,
                        request.branch,
                        [_edit(c, f"changes[{i}]") for i, c in enumerate(request.changes)],
                        message=request.message,
                        expected_head=request.expected_head,
                        force=Force(request.force, request.force_reason),
                    )
                ]
            )
        )
        await _send_commit(context, found.commit.id)
        return convert.commit_to_message(found)

    # -- ObjectTypes ---------------------------------------------------------------

    async def GetObjectType(
        self, request: schema_service_pb2.GetObjectTypeRequest, context: Context
    ) -> resources_pb2.ObjectType:
        return await self._get(convert.OBJECT_TYPE, request)

    async def ListObjectTypes(
        self, request: schema_service_pb2.ListObjectTypesRequest, context: Context
    ) -> schema_service_pb2.ListObjectTypesResponse:
        return await self._list(convert.OBJECT_TYPE, request)

    async def CreateObjectType(
        self, request: schema_service_pb2.CreateObjectTypeRequest, context: Context
    ) -> resources_pb2.ObjectType:
        return await self._create(convert.OBJECT_TYPE, request, context)

    async def UpdateObjectType(
        self, request: schema_service_pb2.UpdateObjectTypeRequest, context: Context
    ) -> resources_pb2.ObjectType:
        return await self._update(convert.OBJECT_TYPE, request, context)

    async def DeleteObjectType(
        self, request: schema_service_pb2.DeleteObjectTypeRequest, context: Context
    ) -> empty_pb2.Empty:
        return await self._delete(convert.OBJECT_TYPE, request, context)

    # -- LinkTypes ---------------------------------------------------------------

    async def GetLinkType(
        self, request: schema_service_pb2.GetLinkTypeRequest, context: Context
    ) -> resources_pb2.LinkType:
        return await self._get(convert.LINK_TYPE, request)

    async def ListLinkTypes(
        self, request: schema_service_pb2.ListLinkTypesRequest, context: Context
    ) -> schema_service_pb2.ListLinkTypesResponse:
        return await self._list(convert.LINK_TYPE, request)

    async def CreateLinkType(
        self, request: schema_service_pb2.CreateLinkTypeRequest, context: Context
    ) -> resources_pb2.LinkType:
        return await self._create(convert.LINK_TYPE, request, context)

    async def UpdateLinkType(
        self, request: schema_service_pb2.UpdateLinkTypeRequest, context: Context
    ) -> resources_pb2.LinkType:
        return await self._update(convert.LINK_TYPE, request, context)

    async def DeleteLinkType(
        self, request: schema_service_pb2.DeleteLinkTypeRequest, context: Context
    ) -> empty_pb2.Empty:
        return await self._delete(convert.LINK_TYPE, request, context)

    # -- ActionTypes ---------------------------------------------------------------

    async def GetActionType(
        self, request: schema_service_pb2.GetActionTypeRequest, context: Context
    ) -> resources_pb2.ActionType:
        return await self._get(convert.ACTION_TYPE, request)

    async def ListActionTypes(
        self, request: schema_service_pb2.ListActionTypesRequest, context: Context
    ) -> schema_service_pb2.ListActionTypesResponse:
        return await self._list(convert.ACTION_TYPE, request)

    async def CreateActionType(
        self, request: schema_service_pb2.CreateActionTypeRequest, context: Context
    ) -> resources_pb2.ActionType:
        return await self._create(convert.ACTION_TYPE, request, context)

    async def UpdateActionType(
        self, request: schema_service_pb2.UpdateActionTypeRequest, context: Context
    ) -> resources_pb2.ActionType:
        return await self._update(convert.ACTION_TYPE, request, context)

    async def DeleteActionType(
        self, request: schema_service_pb2.DeleteActionTypeRequest, context: Context
    ) -> empty_pb2.Empty:
        return await self._delete(convert.ACTION_TYPE, request, context)

    # -- Interfaces ---------------------------------------------------------------

    async def GetInterface(
        self, request: schema_service_pb2.GetInterfaceRequest, context: Context
    ) -> resources_pb2.Interface:
        return await self._get(convert.INTERFACE, request)

    async def ListInterfaces(
        self, request: schema_service_pb2.ListInterfacesRequest, context: Context
    ) -> schema_service_pb2.ListInterfacesResponse:
        return await self._list(convert.INTERFACE, request)

    async def CreateInterface(
        self, request: schema_service_pb2.CreateInterfaceRequest, context: Context
    ) -> resources_pb2.Interface:
        return await self._create(convert.INTERFACE, request, context)

    async def UpdateInterface(
        self, request: schema_service_pb2.UpdateInterfaceRequest, context: Context
    ) -> resources_pb2.Interface:
        return await self._update(convert.INTERFACE, request, context)

    async def DeleteInterface(
        self, request: schema_service_pb2.DeleteInterfaceRequest, context: Context
    ) -> empty_pb2.Empty:
        return await self._delete(convert.INTERFACE, request, context)

    # -- SharedProperties ---------------------------------------------------------------

    async def GetSharedProperty(
        self, request: schema_service_pb2.GetSharedPropertyRequest, context: Context
    ) -> resources_pb2.SharedProperty:
        return await self._get(convert.SHARED_PROPERTY, request)

    async def ListSharedProperties(
        self, request: schema_service_pb2.ListSharedPropertiesRequest, context: Context
    ) -> schema_service_pb2.ListSharedPropertiesResponse:
        return await self._list(convert.SHARED_PROPERTY, request)

    async def CreateSharedProperty(
        self, request: schema_service_pb2.CreateSharedPropertyRequest, context: Context
    ) -> resources_pb2.SharedProperty:
        return await self._create(convert.SHARED_PROPERTY, request, context)

    async def UpdateSharedProperty(
        self, request: schema_service_pb2.UpdateSharedPropertyRequest, context: Context
    ) -> resources_pb2.SharedProperty:
        return await self._update(convert.SHARED_PROPERTY, request, context)

    async def DeleteSharedProperty(
        self, request: schema_service_pb2.DeleteSharedPropertyRequest, context: Context
    ) -> empty_pb2.Empty:
        return await self._delete(convert.SHARED_PROPERTY, request, context)

    # -- what the collections share ---------------------------------------------------

    async def _resource(
        self, kind: Kind[M, Any], read: Callable[..., Stored], *args: Any, **kwargs: Any
    ) -> M:
        """``read`` and the conversion of what it returns, both in the blocking pool."""
        message = await self._run(lambda: self._messages.of(read(*args, **kwargs)))
        return cast(M, message)  # the message of the collection read, by kind.collection

    async def _written(
        self, context: Context, write: Callable[..., Stored], *args: Any, **kwargs: Any
    ) -> Any:
        """``write``, its resource's message, and the commit it made sent as metadata."""

        def run() -> tuple[Message, str]:
            stored = write(*args, **kwargs)
            return self._messages.of(stored), stored.commit

        message, commit = await self._run(run)
        await _send_commit(context, commit)
        return message

    async def _get(self, kind: Kind[M, Any], request: Any) -> M:
        _required(request, "branch", "api_name")
        return await self._resource(
            kind,
            self._service.get,
            request.branch,
            kind.collection,
            request.api_name,
            request.revision,
        )

    async def _list(self, kind: Kind[Any, L], request: Any) -> L:
        _required(request, "branch")

        def page() -> L:
            found = self._service.list_resources(
                request.branch,
                kind.collection,
                revision=request.revision,
                page_size=request.page_size,
                page_token=request.page_token,
            )
            response = kind.list_response()
            kept, response.next_page_token = pages.fit(
                found, [self._messages.of(s) for s in found.items]
            )
            getattr(response, kind.plural).extend(kept)
            return response

        return await self._run(page)

    async def _create(self, kind: Kind[M, Any], request: Any, context: Context) -> M:
        _required(request, "branch")
        raw = convert.resource_to_domain(getattr(request, kind.field), kind.field)
        return cast(
            M,
            await self._written(
                context,
                self._service.create,
                current_principal(),
                request.branch,
                kind.collection,
                raw,
                request.message,
                Force(request.force, request.force_reason),
            ),
        )

    async def _update(self, kind: Kind[M, Any], request: Any, context: Context) -> M:
        _required(request, "branch")
        resource = getattr(request, kind.field)
        mask = [p for p in request.update_mask.paths if p != "*"]
        return cast(
            M,
            await self._written(
                context,
                self._service.update,
                current_principal(),
                request.branch,
                kind.collection,
                convert.resource_to_domain(resource, kind.field),
                mask=mask,
                explicit=convert.resource_to_domain(resource, kind.field, explicit=True),
                etag=resource.etag,
                message=request.message,
                force=Force(request.force, request.force_reason),
            ),
        )

    async def _delete(
        self, kind: Kind[Any, Any], request: Any, context: Context
    ) -> empty_pb2.Empty:
        _required(request, "branch", "api_name")
        commit = await self._run(
            self._service.delete,
            current_principal(),
            request.branch,
            kind.collection,
            request.api_name,
            etag=request.etag,
            message=request.message,
            force=Force(request.force, request.force_reason),
        )
        await _send_commit(context, commit.id)
        return empty_pb2.Empty()


class BranchServicer(branch_service_pb2_grpc.BranchServiceServicer):
    """Branches, history, diff, merge, rebase, revert and validation.

    Every commit a response carries lists its changes (:meth:`OntologyService.changes_of`),
    read in the same hop to the blocking pool as the call.
    """

    def __init__(
        self, service: OntologyService, history: HistoryService, blocking: Blocking
    ) -> None:
        self._service = service
        self._history = history
        self._run = blocking.run

    def _branch(self, found: tuple[BranchRecord, CommitRecord]) -> history_pb2.Branch:
        branch, head = found
        (changes,) = self._service.changes_of([head])
        return convert.branch_to_message(branch, changes)

    def _commit(self, commit: CommitRecord) -> history_pb2.Commit:
        (changes,) = self._service.changes_of([commit])
        return convert.commit_to_message(changes)

    async def CreateBranch(
        self, request: branch_service_pb2.CreateBranchRequest, context: Context
    ) -> history_pb2.Branch:
        _required(request, "name")
        principal = current_principal()
        return await self._run(
            lambda: self._branch(
                self._service.create_branch(
                    principal,
                    request.name,
                    source=request.source,
                    base_branch=request.base_branch,
                    compatibility_mode=_enum_value(
                        history_pb2.CompatibilityMode,
                        request.compatibility_mode,
                        "compatibility_mode",
                    ),
                )
            )
        )

    async def GetBranch(
        self, request: branch_service_pb2.GetBranchRequest, context: Context
    ) -> history_pb2.Branch:
        _required(request, "name")
        return await self._run(lambda: self._branch(self._service.get_branch(request.name)))

    async def ListBranches(
        self, request: branch_service_pb2.ListBranchesRequest, context: Context
    ) -> branch_service_pb2.ListBranchesResponse:
        page = await self._run(
            self._service.list_branches, page_size=request.page_size, page_token=request.page_token
        )
        return branch_service_pb2.ListBranchesResponse(
            branches=[convert.branch_to_message(b) for b in page.items],
            next_page_token=page.next_page_token,
        )

    async def UpdateBranch(
        self, request: branch_service_pb2.UpdateBranchRequest, context: Context
    ) -> history_pb2.Branch:
        if not request.branch.name:
            raise errors.invalid([FieldViolation("branch.name", "required", "REQUIRED")])
        principal = current_principal()
        values = {
            "compatibility_mode": _enum_value(
                history_pb2.CompatibilityMode,
                request.branch.compatibility_mode,
                "branch.compatibility_mode",
            ),
            "protected": request.branch.protected,
            "base_branch": request.branch.base_branch,
            "requires_proposal": request.branch.requires_proposal,
            "required_approvals": request.branch.required_approvals,
            "allow_self_approval": request.branch.allow_self_approval,
            "compatibility_exemptions": tuple(request.branch.compatibility_exemptions),
        }
        return await self._run(
            lambda: self._branch(
                self._service.update_branch(
                    principal,
                    request.branch.name,
                    list(request.update_mask.paths),
                    values,
                    reason=request.reason,
                )
            )
        )

    async def DeleteBranch(
        self, request: branch_service_pb2.DeleteBranchRequest, context: Context
    ) -> empty_pb2.Empty:
        _required(request, "name")
        await self._run(self._service.delete_branch, current_principal(), request.name)
        return empty_pb2.Empty()

    async def ListCommits(
        self, request: branch_service_pb2.ListCommitsRequest, context: Context
    ) -> branch_service_pb2.ListCommitsResponse:
        _required(request, "branch")

        def page() -> branch_service_pb2.ListCommitsResponse:
            found = self._service.list_commits(
                request.branch,
                resource=canonical_key(request.resource),
                page_size=request.page_size,
                page_token=request.page_token,
            )
            kept, token = pages.fit(
                found,
                [convert.commit_to_message(c) for c in self._service.changes_of(found.items)],
            )
            return branch_service_pb2.ListCommitsResponse(commits=kept, next_page_token=token)

        return await self._run(page)

    async def GetCommit(
        self, request: branch_service_pb2.GetCommitRequest, context: Context
    ) -> history_pb2.Commit:
        _required(request, "id")
        return await self._run(lambda: self._commit(self._service.get_commit(request.id)))

    async def DiffRefs(
        self, request: branch_service_pb2.DiffRefsRequest, context: Context
    ) -> branch_service_pb2.DiffRefsResponse:
        _required(request, "base", "head")
        page = await self._run(
            self._service.diff,
            request.base,
            request.head,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        kept, token = pages.fit(page, [convert.resource_change_to_message(c) for c in page.changes])
        return branch_service_pb2.DiffRefsResponse(
            base_commit=page.base.id, head_commit=page.head.id, changes=kept, next_page_token=token
        )

    async def MergeBranch(
        self, request: branch_service_pb2.MergeBranchRequest, context: Context
    ) -> branch_service_pb2.MergeBranchResponse:
        _required(request, "branch")
        principal = current_principal()
        resolutions = convert.resolutions_to_domain(request.resolutions)

        def merge() -> branch_service_pb2.MergeBranchResponse:
            result = self._service.merge(
                principal,
                request.branch,
                target=request.target,
                strategy=_strategy(request.strategy),
                message=request.message,
                force=Force(request.force, request.force_reason),
                resolutions=resolutions,
            )
            (changes,) = self._service.changes_of([result.commit])
            return convert.merge_result_to_message(result, changes)

        return await self._run(merge)

    async def RebaseBranch(
        self, request: branch_service_pb2.RebaseBranchRequest, context: Context
    ) -> branch_service_pb2.RebaseBranchResponse:
        _required(request, "branch")
        principal = current_principal()
        resolutions = convert.resolutions_to_domain(request.resolutions)

        def rebase() -> branch_service_pb2.RebaseBranchResponse:
            result = self._history.rebase(
                principal,
                request.branch,
                onto=request.onto,
                message=request.message,
                resolutions=resolutions,
                expected_head=request.expected_head,
            )
            return branch_service_pb2.RebaseBranchResponse(
                outcome=f"REBASE_OUTCOME_{result.outcome.value}",
                commit=self._commit(result.commit),
                onto_commit=result.onto.id,
            )

        return await self._run(rebase)

    async def RevertCommit(
        self, request: branch_service_pb2.RevertCommitRequest, context: Context
    ) -> history_pb2.Commit:
        _required(request, "branch", "commit")
        principal = current_principal()
        resolutions = convert.resolutions_to_domain(request.resolutions)
        return await self._run(
            lambda: self._commit(
                self._history.revert(
                    principal,
                    request.branch,
                    commit=request.commit,
                    message=request.message,
                    resolutions=resolutions,
                    force=Force(request.force, request.force_reason),
                )
            )
        )

    async def ValidateBranch(
        self, request: branch_service_pb2.ValidateBranchRequest, context: Context
    ) -> branch_service_pb2.ValidateBranchResponse:
        _required(request, "branch")
        result = await self._run(
            self._service.validate,
            current_principal(),
            request.branch,
            against=request.against,
            mode=_enum_value(history_pb2.CompatibilityMode, request.mode, "mode"),
        )
        return branch_service_pb2.ValidateBranchResponse(
            passed=result.passed,
            mode=convert.compatibility_mode_to_proto(result.mode),
            base_commit=result.base.id,
            head_commit=result.head.id,
            findings=[convert.finding_to_message(f) for f in result.findings],
            affected_objects=[convert.affected_to_message(a) for a in result.affected],
        )

    async def ListCompatibilityRules(
        self, request: branch_service_pb2.ListCompatibilityRulesRequest, context: Context
    ) -> branch_service_pb2.ListCompatibilityRulesResponse:
        rules = self._service.compatibility_rules()
        return branch_service_pb2.ListCompatibilityRulesResponse(
            rules=[convert.rule_to_message(rule) for rule in rules]
        )


class ProposalServicer(proposal_service_pb2_grpc.ProposalServiceServicer):
    """Proposals, their review and their merge."""

    def __init__(self, proposals: ProposalService, blocking: Blocking) -> None:
        self._proposals = proposals
        self._run = blocking.run

    async def _view(self, call: Callable[..., ProposalView], *args: Any) -> ps.Proposal:
        """``call`` and the conversion of the proposal it returns, in the blocking pool."""
        return await self._run(lambda: convert.proposal_to_message(call(*args)))

    async def CreateProposal(
        self, request: ps.CreateProposalRequest, context: Context
    ) -> ps.Proposal:
        proposal = request.proposal
        return await self._view(
            lambda: self._proposals.create(
                current_principal(),
                title=proposal.title,
                description=proposal.description,
                source=proposal.source,
                target=proposal.target,
                reviewers=list(proposal.reviewers),
            )
        )

    async def GetProposal(self, request: ps.GetProposalRequest, context: Context) -> ps.Proposal:
        _required(request, "id")
        return await self._view(self._proposals.get, request.id)

    async def ListProposals(
        self, request: ps.ListProposalsRequest, context: Context
    ) -> ps.ListProposalsResponse:
        state = _enum_value(ps.ProposalState, request.state, "state")

        def page() -> ps.ListProposalsResponse:
            found = self._proposals.list_proposals(
                state=state,
                target=request.target,
                page_size=request.page_size,
                page_token=request.page_token,
            )
            kept, token = pages.fit(found, [convert.proposal_to_message(v) for v in found.items])
            return ps.ListProposalsResponse(proposals=kept, next_page_token=token)

        return await self._run(page)

    async def UpdateProposal(
        self, request: ps.UpdateProposalRequest, context: Context
    ) -> ps.Proposal:
        if not request.proposal.id:
            raise errors.invalid([FieldViolation("proposal.id", "required", "REQUIRED")])
        proposal = request.proposal
        return await self._view(
            lambda: self._proposals.update(
                current_principal(),
                proposal.id,
                list(request.update_mask.paths),
                {
                    "title": proposal.title,
                    "description": proposal.description,
                    "reviewers": list(proposal.reviewers),
                },
                etag=proposal.etag,
            )
        )

    async def CloseProposal(
        self, request: ps.CloseProposalRequest, context: Context
    ) -> ps.Proposal:
        _required(request, "id")
        return await self._view(self._proposals.close, current_principal(), request.id)

    async def ReviewProposal(
        self, request: ps.ReviewProposalRequest, context: Context
    ) -> ps.Proposal:
        _required(request, "id")
        verdict = _enum_value(ps.ReviewVerdict, request.verdict, "verdict")
        return await self._view(
            lambda: self._proposals.review(
                current_principal(),
                request.id,
                verdict,
                request.comment,
                source_head=request.source_head,
            )
        )

    async def AddComment(self, request: ps.AddCommentRequest, context: Context) -> ps.Comment:
        _required(request, "id")
        entry = await self._run(
            self._proposals.comment, current_principal(), request.id, request.body
        )
        return convert.comment_to_message(entry)

    async def ListComments(
        self, request: ps.ListCommentsRequest, context: Context
    ) -> ps.ListCommentsResponse:
        _required(request, "id")
        page = await self._run(
            self._proposals.comments,
            request.id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        kept, token = pages.fit(page, [convert.comment_to_message(e) for e in page.items])
        return ps.ListCommentsResponse(comments=kept, next_page_token=token)

    async def RevalidateProposal(
        self, request: ps.RevalidateProposalRequest, context: Context
    ) -> ps.Proposal:
        _required(request, "id")
        return await self._view(self._proposals.revalidate, current_principal(), request.id)

    async def MergeProposal(
        self, request: ps.MergeProposalRequest, context: Context
    ) -> ps.MergeProposalResponse:
        _required(request, "id")
        principal = current_principal()
        resolutions = convert.resolutions_to_domain(request.resolutions)

        def merge() -> ps.MergeProposalResponse:
            view, result = self._proposals.merge(
                principal,
                request.id,
                strategy=_strategy(request.strategy),
                message=request.message,
                force=Force(request.force, request.force_reason),
                resolutions=resolutions,
            )
            (changes,) = self._proposals.ontology.changes_of([result.commit])
            return ps.MergeProposalResponse(
                proposal=convert.proposal_to_message(view),
                merge=convert.merge_result_to_message(result, changes),
            )

        return await self._run(merge)


class TagServicer(tag_service_pb2_grpc.TagServiceServicer):
    """Tags: named, immutable references to commits."""

    def __init__(
        self, service: OntologyService, history: HistoryService, blocking: Blocking
    ) -> None:
        self._service = service
        self._history = history
        self._run = blocking.run

    def _tag(self, found: tuple[TagRecord, CommitRecord]) -> tag_service_pb2.Tag:
        tag, commit = found
        (changes,) = self._service.changes_of([commit])
        return convert.tag_to_message(tag, changes)

    async def CreateTag(
        self, request: tag_service_pb2.CreateTagRequest, context: Context
    ) -> tag_service_pb2.Tag:
        _required(request, "name")
        principal = current_principal()
        return await self._run(
            lambda: self._tag(
                self._history.create_tag(
                    principal, request.name, target=request.target, message=request.message
                )
            )
        )

    async def GetTag(
        self, request: tag_service_pb2.GetTagRequest, context: Context
    ) -> tag_service_pb2.Tag:
        _required(request, "name")
        return await self._run(lambda: self._tag(self._history.get_tag(request.name)))

    async def ListTags(
        self, request: tag_service_pb2.ListTagsRequest, context: Context
    ) -> tag_service_pb2.ListTagsResponse:
        page = await self._run(
            self._history.list_tags, page_size=request.page_size, page_token=request.page_token
        )
        kept, token = pages.fit(page, [convert.tag_to_message(t) for t in page.items])
        return tag_service_pb2.ListTagsResponse(tags=kept, next_page_token=token)

    async def DeleteTag(
        self, request: tag_service_pb2.DeleteTagRequest, context: Context
    ) -> empty_pb2.Empty:
        _required(request, "name")
        await self._run(self._history.delete_tag, current_principal(), request.name)
        return empty_pb2.Empty()


class ObjectServicer(object_service_pb2_grpc.ObjectServiceServicer):
    """Objects and links: each write answers with its commit in :data:`COMMIT_HEADER`."""

    def __init__(self, service: ObjectService, blocking: Blocking) -> None:
        self._service = service
        self._run = blocking.run

    async def GetObject(
        self, request: object_service_pb2.GetObjectRequest, context: Context
    ) -> object_service_pb2.OntologyObject:
        _required(request, "branch", "object_type", "primary_key")
        found = await self._run(
            self._service.get,
            request.branch,
            request.object_type,
            request.primary_key,
            request.revision,
        )
        return convert.object_to_message(found)

    async def ListObjects(
        self, request: object_service_pb2.ListObjectsRequest, context: Context
    ) -> object_service_pb2.ListObjectsResponse:
        _required(request, "branch", "object_type")
        page = await self._run(
            lambda: self._service.list_objects(
                request.branch,
                request.object_type,
                revision=request.revision,
                filter_text=request.filter,
                order_by=request.order_by,
                page_size=request.page_size,
                page_token=request.page_token,
            )
        )
        kept, token = pages.fit(page, [convert.object_to_message(o) for o in page.items])
        return object_service_pb2.ListObjectsResponse(objects=kept, next_page_token=token)

    async def ListLinkedObjects(
        self, request: object_service_pb2.ListLinkedObjectsRequest, context: Context
    ) -> object_service_pb2.ListObjectsResponse:
        _required(request, "branch", "object_type", "primary_key", "link_type")
        page = await self._run(
            lambda: self._service.linked_objects(
                request.branch,
                request.object_type,
                request.primary_key,
                request.link_type,
                revision=request.revision,
                page_size=request.page_size,
                page_token=request.page_token,
            )
        )
        kept, token = pages.fit(page, [convert.object_to_message(o) for o in page.items])
        return object_service_pb2.ListObjectsResponse(objects=kept, next_page_token=token)

    async def CreateObject(
        self, request: object_service_pb2.CreateObjectRequest, context: Context
    ) -> object_service_pb2.OntologyObject:
        _required(request, "branch", "object_type")
        created = await self._run(
            self._service.create,
            current_principal(),
            request.branch,
            request.object_type,
            convert.values_to_domain(request.object.properties, "object.properties"),
            request.message,
        )
        await _send_commit(context, created.commit)
        return convert.object_to_message(created)

    async def UpdateObject(
        self, request: object_service_pb2.UpdateObjectRequest, context: Context
    ) -> object_service_pb2.OntologyObject:
        _required(request, "branch", "object_type", "primary_key")
        updated = await self._run(
            lambda: self._service.update(
                current_principal(),
                request.branch,
                request.object_type,
                request.primary_key,
                convert.values_to_domain(request.object.properties, "object.properties"),
                mask=list(request.update_mask.paths),
                etag=request.object.etag,
                message=request.message,
            )
        )
        await _send_commit(context, updated.commit)
        return convert.object_to_message(updated)

    async def DeleteObject(
        self, request: object_service_pb2.DeleteObjectRequest, context: Context
    ) -> empty_pb2.Empty:
        _required(request, "branch", "object_type", "primary_key")
        commit = await self._run(
            lambda: self._service.delete(
                current_principal(),
                request.branch,
                request.object_type,
                request.primary_key,
                etag=request.etag,
                delete_links=request.delete_links,
                message=request.message,
            )
        )
        await _send_commit(context, commit.id)
        return empty_pb2.Empty()

    async def CreateLink(
        self, request: object_service_pb2.CreateLinkRequest, context: Context
    ) -> object_service_pb2.Link:
        _required(request, "branch", "link_type")
        missing = [
            f"link.{n}"
            for n in ("from_primary_key", "to_primary_key")
            if not getattr(request.link, n)
        ]
        if missing:
            raise errors.invalid([FieldViolation(n, "required", "REQUIRED") for n in missing])
        created = await self._run(
            self._service.create_link,
            current_principal(),
            request.branch,
            request.link_type,
            request.link.from_primary_key,
            request.link.to_primary_key,
            request.message,
        )
        await _send_commit(context, created.commit)
        return convert.link_to_message(created)

    async def DeleteLink(
        self, request: object_service_pb2.DeleteLinkRequest, context: Context
    ) -> empty_pb2.Empty:
        _required(request, "branch", "link_type", "from_primary_key", "to_primary_key")
        commit = await self._run(
            self._service.delete_link,
            current_principal(),
            request.branch,
            request.link_type,
            request.from_primary_key,
            request.to_primary_key,
            request.message,
        )
        await _send_commit(context, commit.id)
        return empty_pb2.Empty()


class ActionServicer(action_service_pb2_grpc.ActionServiceServicer):
    """Runs action types; a run's commit is also in :data:`COMMIT_HEADER`."""

    def __init__(self, service: ObjectService, blocking: Blocking) -> None:
        self._service = service
        self._run = blocking.run

    async def ExecuteAction(
        self, request: action_service_pb2.ExecuteActionRequest, context: Context
    ) -> action_service_pb2.ExecuteActionResponse:
        _required(request, "branch", "action_type")
        result = await self._run(
            lambda: self._service.execute_action(
                current_principal(),
                request.branch,
                request.action_type,
                convert.values_to_domain(request.parameters, "parameters"),
                validate_only=request.validate_only,
            )
        )
        if result.commit:
            await _send_commit(context, result.commit)
        return convert.action_result_to_message(result)


def _policies() -> dict[str, Policy]:
    """Who may call each method: reads need schema:read, writes schema:write, and so on."""
    read, write = requires(Permission.SCHEMA_READ), requires(Permission.SCHEMA_WRITE)
    table: dict[str, Policy] = {}
    for method in schema_service_pb2.DESCRIPTOR.services_by_name["SchemaService"].methods:
        is_read = method.name.startswith(("Get", "List"))
        table[f"/{SCHEMA_SERVICE}/{method.name}"] = read if is_read else write
    branch_methods = {
        "CreateBranch": requires(Permission.BRANCH_CREATE),
        "GetBranch": read,
        "ListBranches": read,
        "UpdateBranch": requires(Permission.BRANCH_CREATE),
        "DeleteBranch": requires(Permission.BRANCH_DELETE),
        "ListCommits": read,
        "GetCommit": read,
        "DiffRefs": read,
        "MergeBranch": requires(Permission.BRANCH_MERGE),
        "RebaseBranch": requires(Permission.BRANCH_MERGE),
        "RevertCommit": write,
        "ValidateBranch": read,
        "ListCompatibilityRules": read,
    }
    table.update({f"/{BRANCH_SERVICE}/{name}": p for name, p in branch_methods.items()})
    proposal_methods = {
        "CreateProposal": write,
        "GetProposal": read,
        "ListProposals": read,
        "UpdateProposal": write,
        "CloseProposal": write,
        "ReviewProposal": write,
        "AddComment": write,
        "ListComments": read,
        "RevalidateProposal": write,
        "MergeProposal": requires(Permission.BRANCH_MERGE),
    }
    table.update({f"/{PROPOSAL_SERVICE}/{name}": p for name, p in proposal_methods.items()})
    # Tags are references like branches: made by who may branch, removed by who may delete one.
    tag_methods = {
        "CreateTag": requires(Permission.BRANCH_CREATE),
        "GetTag": read,
        "ListTags": read,
        "DeleteTag": requires(Permission.BRANCH_DELETE),
    }
    table.update({f"/{TAG_SERVICE}/{name}": p for name, p in tag_methods.items()})
    object_read, object_write = requires(Permission.OBJECT_READ), requires(Permission.OBJECT_WRITE)
    for method in object_service_pb2.DESCRIPTOR.services_by_name["ObjectService"].methods:
        is_read = method.name.startswith(("Get", "List"))
        table[f"/{OBJECT_SERVICE}/{method.name}"] = object_read if is_read else object_write
    # Each action type names the permission that runs it; the call itself only needs a caller.
    table[f"/{ACTION_SERVICE}/ExecuteAction"] = AUTHENTICATED
    return table


POLICIES = _policies()


def _events() -> dict[str, tuple[str, ...]]:
    """The event types each RPC emits: every resource write is a commit of schema events.

    A write refused for breaking a protected branch's compatibility emits ``oms.commit.refused``.
    """
    schema_events = ("oms.schema.created", "oms.schema.updated", "oms.schema.deleted")
    refused = "oms.commit.refused"
    table: dict[str, tuple[str, ...]] = {}
    for method in schema_service_pb2.DESCRIPTOR.services_by_name["SchemaService"].methods:
        verb = re.match(r"[A-Z][a-z]*", method.name)
        emitted = {
            "Create": ("oms.schema.created",),
            "Update": ("oms.schema.updated",),
            "Delete": ("oms.schema.deleted",),
            "Commit": schema_events,
        }.get(verb.group() if verb else "")
        if emitted:
            table[f"/{SCHEMA_SERVICE}/{method.name}"] = (*emitted, refused)
    branch_events = {
        "CreateBranch": ("oms.branch.created",),
        "UpdateBranch": ("oms.branch.updated", "oms.branch.settings_changed"),
        "DeleteBranch": ("oms.branch.deleted",),
        "MergeBranch": ("oms.branch.merged", "oms.branch.merge_refused"),
        "RebaseBranch": ("oms.branch.rebased", "oms.branch.rebase_refused"),
        "RevertCommit": ("oms.commit.reverted", "oms.commit.revert_refused"),
        "ValidateBranch": ("oms.validation.passed", "oms.validation.failed"),
    }
    table.update({f"/{BRANCH_SERVICE}/{name}": e for name, e in branch_events.items()})
    proposal_events = {
        "CreateProposal": ("oms.proposal.opened",),
        "UpdateProposal": ("oms.proposal.updated",),
        "CloseProposal": ("oms.proposal.closed",),
        "ReviewProposal": ("oms.proposal.approved", "oms.proposal.changes_requested"),
        "AddComment": ("oms.proposal.commented",),
        "RevalidateProposal": ("oms.proposal.revalidated",),
        "MergeProposal": (
            "oms.branch.merged",
            "oms.proposal.merged",
            "oms.branch.merge_refused",
        ),
    }
    table.update({f"/{PROPOSAL_SERVICE}/{name}": e for name, e in proposal_events.items()})
    tag_events = {"CreateTag": ("oms.tag.created",), "DeleteTag": ("oms.tag.deleted",)}
    table.update({f"/{TAG_SERVICE}/{name}": e for name, e in tag_events.items()})
    object_events = {
        "CreateObject": ("oms.object.created",),
        "UpdateObject": ("oms.object.updated",),
        "DeleteObject": ("oms.object.deleted", "oms.link.deleted"),
        "CreateLink": ("oms.link.created",),
        "DeleteLink": ("oms.link.deleted",),
    }
    table.update({f"/{OBJECT_SERVICE}/{name}": (*e, refused) for name, e in object_events.items()})
    table[f"/{ACTION_SERVICE}/ExecuteAction"] = (
        "oms.action.executed",
        "oms.action.failed",
        *sorted({e for emitted in object_events.values() for e in emitted}),
        refused,
    )
    return table


EVENTS = _events()
"""The event types each RPC emits into the outbox (see docs/audit.md, "Event types").

Any RPC refused for its caller also emits ``oms.call.denied`` (:mod:`common.denials`).
"""


def _reasons() -> dict[str, tuple[str, ...]]:
    """The ErrorInfo reasons each RPC answers beyond the runtime's (see ``common/reasons.py``).

    Every ref a request names resolves through ``oms/refs.py`` and every read of stored
    content may find it corrupt.
    """
    ref = ("REF_NOT_FOUND", "REF_AMBIGUOUS", "COMMIT_NOT_FOUND", "STORE_CORRUPT")
    listed = ("PAGE_TOKEN_INVALID",)
    commit = ("BRANCH_NOT_FOUND", "BRANCH_HEAD_MOVED", "BRANCH_REQUIRES_PROPOSAL", "STORE_CORRUPT")
    checked = ("ADMIN_REQUIRED", "BREAKING_CHANGES", "DATA_VIOLATES_SCHEMA")
    merged = ("MERGE_CONFLICT", "MERGE_INVALID", "NO_MERGE_BASE", *checked)
    table: dict[str, tuple[str, ...]] = {}
    for method in schema_service_pb2.DESCRIPTOR.services_by_name["SchemaService"].methods:
        verb = re.match(r"[A-Z][a-z]*", method.name)
        reasons = {
            "Get": (*ref, "RESOURCE_NOT_FOUND"),
            "List": (*ref, *listed),
            "Create": (*commit, *checked, "RESOURCE_EXISTS"),
            "Update": (*commit, *checked, "RESOURCE_NOT_FOUND", "ETAG_MISMATCH"),
            "Delete": (*commit, *checked, "RESOURCE_NOT_FOUND", "ETAG_MISMATCH", "RESOURCE_IN_USE"),
            "Commit": (
                *commit,
                *checked,
                "RESOURCE_EXISTS",
                "RESOURCE_NOT_FOUND",
                "RESOURCE_IN_USE",
                "INVALID_RESOURCE_KEY",
                "UNKNOWN_COLLECTION",
                "OBJECT_EXISTS",
                "OBJECT_NOT_FOUND",
                "LINK_EXISTS",
                "LINK_NOT_FOUND",
            ),
        }[verb.group() if verb else ""]
        table[f"/{SCHEMA_SERVICE}/{method.name}"] = reasons
    branch = ("BRANCH_NOT_FOUND",)
    branches = {
        "CreateBranch": (*ref, "BRANCH_EXISTS"),
        "GetBranch": branch,
        "ListBranches": listed,
        "UpdateBranch": (*branch, "ADMIN_REQUIRED", "ETAG_MISMATCH"),
        "DeleteBranch": (*branch, "BRANCH_PROTECTED"),
        "ListCommits": (*ref, *listed, "INVALID_RESOURCE_KEY", "UNKNOWN_COLLECTION"),
        "GetCommit": ref,
        "DiffRefs": (*ref, *listed),
        "MergeBranch": (*ref, *branch, *merged, "BRANCH_REQUIRES_PROPOSAL", "BRANCH_HEAD_MOVED"),
        "RebaseBranch": (*ref, *branch, *merged, "BRANCH_PROTECTED", "BRANCH_HEAD_MOVED"),
        "RevertCommit": (
            *ref,
            *branch,
            *merged,
            "COMMIT_NOT_ON_BRANCH",
            "NOTHING_TO_REVERT",
            "BRANCH_REQUIRES_PROPOSAL",
            "BRANCH_HEAD_MOVED",
        ),
        "ValidateBranch": (*ref, *branch),
    }
    table.update({f"/{BRANCH_SERVICE}/{name}": r for name, r in branches.items()})
    proposal = ("PROPOSAL_NOT_FOUND",)
    open_proposal = (*proposal, "PROPOSAL_NOT_OPEN")
    proposals = {
        "CreateProposal": (*ref, *branch),
        "GetProposal": (*proposal, *branch, "STORE_CORRUPT"),
        "ListProposals": listed,
        "UpdateProposal": (*open_proposal, "ETAG_MISMATCH", "NOT_PROPOSAL_AUTHOR"),
        "CloseProposal": (*open_proposal, "NOT_PROPOSAL_AUTHOR"),
        "ReviewProposal": (
            *open_proposal,
            *branch,
            "SELF_APPROVAL_NOT_ALLOWED",
            "SOURCE_HEAD_MOVED",
            "CONCURRENT_ENTRY",
        ),
        "AddComment": (*open_proposal, "CONCURRENT_ENTRY"),
        "ListComments": (*proposal, *listed),
        "RevalidateProposal": (*open_proposal, *branch, "STORE_CORRUPT"),
        "MergeProposal": (
            *open_proposal,
            *branch,
            *merged,
            "APPROVALS_REQUIRED",
            "SECOND_APPROVAL_REQUIRED",
            "SOURCE_HEAD_MOVED",
            "BRANCH_HEAD_MOVED",
        ),
    }
    table.update({f"/{PROPOSAL_SERVICE}/{name}": r for name, r in proposals.items()})
    tags = {
        "CreateTag": (*ref, "TAG_EXISTS", "BRANCH_EXISTS"),
        "GetTag": ("TAG_NOT_FOUND",),
        "ListTags": listed,
        "DeleteTag": ("TAG_NOT_FOUND",),
    }
    table.update({f"/{TAG_SERVICE}/{name}": r for name, r in tags.items()})
    data = (*commit, "RESOURCE_NOT_FOUND", "DATA_VIOLATES_SCHEMA")
    objects = {
        "GetObject": (*ref, "RESOURCE_NOT_FOUND", "OBJECT_NOT_FOUND"),
        "ListObjects": (*ref, *listed, "RESOURCE_NOT_FOUND"),
        "CreateObject": (*data, "OBJECT_EXISTS"),
        "UpdateObject": (*data, "OBJECT_NOT_FOUND", "ETAG_MISMATCH"),
        "DeleteObject": (*data, "OBJECT_NOT_FOUND", "ETAG_MISMATCH", "OBJECT_LINKED"),
        "ListLinkedObjects": (*ref, *listed, "RESOURCE_NOT_FOUND", "OBJECT_NOT_FOUND"),
        "CreateLink": (*data, "OBJECT_NOT_FOUND", "LINK_EXISTS"),
        "DeleteLink": (*data, "LINK_NOT_FOUND"),
    }
    table.update({f"/{OBJECT_SERVICE}/{name}": r for name, r in objects.items()})
    table[f"/{ACTION_SERVICE}/ExecuteAction"] = (
        *data,
        "ACTION_PERMISSION_DENIED",
        "ACTION_EDITS_INVALID",
        "SUBMISSION_CRITERIA_FAILED",
        "MISSING_PERMISSION",
        "OBJECT_EXISTS",
        "OBJECT_NOT_FOUND",
        "OBJECT_LINKED",
        "LINK_EXISTS",
        "LINK_NOT_FOUND",
    )
    return {path: tuple(dict.fromkeys(reasons)) for path, reasons in table.items()}


REASONS = _reasons()
"""Checked against the code by the tests: see ``gateway/reasons.py``."""
