"""Proposals over a real server: review, withdrawn approvals, rules that hold, forced merges."""

from __future__ import annotations

import concurrent.futures

import grpc
import pytest
from google.protobuf import field_mask_pb2

from common import pages
from oms import proposals
from oms.servicers import EVENTS, PROPOSAL_SERVICE
from oms.v1 import branch_service_pb2 as bs
from oms.v1 import history_pb2 as h
from oms.v1 import proposal_service_pb2 as ps
from oms.v1 import schema_service_pb2 as ss
from tests.support.errors import reason, violated_fields
from tests.support.oms import object_type, prop
from tests.support.outbox import last_seq, outbox_rows

EDITOR = ("schema:read", "schema:write", "branch:create", "branch:merge")


@pytest.fixture
def people(oms):
    """Metadata of an author (an editor), a reviewer (an editor) and a second admin."""
    return {
        "author": oms.metadata(EDITOR, username="alice"),
        "reviewer": oms.metadata(EDITOR, username="bob"),
        "admin2": oms.metadata(("*",), username="carol"),
    }


def _open(oms, who, source="feature", target="main", **kwargs):
    return oms.proposals.CreateProposal(
        ps.CreateProposalRequest(
            proposal=ps.Proposal(title="Add Employee", source=source, target=target, **kwargs)
        ),
        metadata=who,
        timeout=10,
    )


def _review(oms, proposal_id, who, verdict=ps.REVIEW_VERDICT_APPROVE, comment="fine"):
    return oms.proposals.ReviewProposal(
        ps.ReviewProposalRequest(id=proposal_id, verdict=verdict, comment=comment),
        metadata=who,
        timeout=10,
    )


def _get(oms, proposal_id):
    return oms.proposals.GetProposal(ps.GetProposalRequest(id=proposal_id), metadata=oms.admin)


def _merge(oms, proposal_id, who, **kwargs):
    return oms.proposals.MergeProposal(
        ps.MergeProposalRequest(id=proposal_id, **kwargs), metadata=who, timeout=30
    )


def _refused(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def test_a_proposal_shows_its_diff_and_validation_and_merges_once_approved(oms, people):
    oms.require_proposals()
    oms.branch("feature")
    oms.create("feature", object_type("Employee"))
    opened = _open(oms, people["author"], reviewers=["bob"], description="HR model")
    assert (opened.state, opened.author, list(opened.reviewers)) == (
        ps.PROPOSAL_STATE_OPEN,
        "alice",
        ["bob"],
    )
    shown = _get(oms, opened.id)
    assert [c.resource for c in shown.changes] == ["object-types/Employee"]
    assert shown.validation.passed
    assert shown.validation.source_head == oms.head("feature")
    assert shown.rules.required_approvals == 1

    early = _refused(lambda: _merge(oms, opened.id, people["author"]))
    assert reason(early) == "APPROVALS_REQUIRED"
    self_approval = _refused(lambda: _review(oms, opened.id, people["author"]))
    assert self_approval.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason(self_approval) == "SELF_APPROVAL_NOT_ALLOWED"

    approved = _review(oms, opened.id, people["reviewer"])
    assert (approved.state, list(approved.approved_by)) == (ps.PROPOSAL_STATE_APPROVED, ["bob"])
    merged = _merge(oms, opened.id, people["author"])
    assert merged.proposal.state == ps.PROPOSAL_STATE_MERGED
    assert merged.proposal.merge_commit == oms.head("main") == merged.merge.commit.id
    # The approvals the merge counted stay on the proposal, though the source may move on.
    assert list(merged.proposal.approved_by) == ["bob"]
    oms.create("feature", object_type("Company"))
    assert list(_get(oms, opened.id).approved_by) == ["bob"]
    assert oms.names("main") == ["Employee"]
    again = _refused(lambda: _merge(oms, opened.id, people["author"]))
    assert reason(again) == "PROPOSAL_NOT_OPEN"


def test_a_new_source_commit_withdraws_approvals(oms, people):
    oms.branch("feature")
    oms.create("feature", object_type("Employee"))
    opened = _open(oms, people["author"])
    assert _review(oms, opened.id, people["reviewer"]).state == ps.PROPOSAL_STATE_APPROVED
    seen = oms.head("feature")
    oms.create("feature", object_type("Company"))
    stale = _refused(
        lambda: oms.proposals.ReviewProposal(
            ps.ReviewProposalRequest(
                id=opened.id, verdict=ps.REVIEW_VERDICT_APPROVE, source_head=seen
            ),
            metadata=people["reviewer"],
        )
    )
    assert (stale.code(), reason(stale)) == (grpc.StatusCode.ABORTED, "SOURCE_HEAD_MOVED")
    withdrawn = _get(oms, opened.id)
    assert (withdrawn.state, list(withdrawn.approved_by)) == (ps.PROPOSAL_STATE_OPEN, [])
    assert reason(_refused(lambda: _merge(oms, opened.id, people["author"]))) == (
        "APPROVALS_REQUIRED"
    )
    _review(oms, opened.id, people["reviewer"])
    changes = _review(
        oms, opened.id, people["reviewer"], ps.REVIEW_VERDICT_REQUEST_CHANGES, "rename it"
    )
    assert changes.state == ps.PROPOSAL_STATE_OPEN


def test_lowered_rules_hold_for_an_open_proposal_until_it_is_revalidated(oms, people):
    oms.create("main", object_type("Employee", prop("email")))
    oms.branch("feature")
    oms.schema.UpdateObjectType(
        ss.UpdateObjectTypeRequest(branch="feature", object_type=object_type("Employee")),
        metadata=oms.admin,
    )
    opened = _open(oms, people["author"])
    assert not _get(oms, opened.id).validation.passed
    _review(oms, opened.id, people["reviewer"])
    oms.branches.UpdateBranch(
        bs.UpdateBranchRequest(
            branch=h.Branch(name="main", compatibility_mode=h.COMPATIBILITY_MODE_NONE),
            update_mask=field_mask_pb2.FieldMask(paths=["compatibility_mode"]),
            reason="one-off cleanup",
        ),
        metadata=oms.admin,
    )
    held = _get(oms, opened.id)
    assert held.rules.compatibility_mode == h.COMPATIBILITY_MODE_BACKWARD
    assert reason(_refused(lambda: _merge(oms, opened.id, people["author"]))) == (
        "BREAKING_CHANGES"
    )
    revalidated = oms.proposals.RevalidateProposal(
        ps.RevalidateProposalRequest(id=opened.id), metadata=people["author"]
    )
    assert revalidated.rules.compatibility_mode == h.COMPATIBILITY_MODE_NONE
    assert _merge(oms, opened.id, people["author"]).proposal.state == ps.PROPOSAL_STATE_MERGED


def test_forcing_breaking_changes_takes_a_second_admin(oms, people, oms_settings):
    oms.create("main", object_type("Employee", prop("email")))
    oms.branch("feature")
    oms.schema.UpdateObjectType(
        ss.UpdateObjectTypeRequest(branch="feature", object_type=object_type("Employee")),
        metadata=oms.admin,
    )
    opened = _open(oms, oms.admin)
    _review(oms, opened.id, people["reviewer"])
    force = {"force": True, "force_reason": "email moves to Contact"}
    before = last_seq(oms_settings.database_url)
    alone = _refused(lambda: _merge(oms, opened.id, oms.admin, **force))
    assert reason(alone) == "SECOND_APPROVAL_REQUIRED"
    (refused,) = outbox_rows(oms_settings.database_url, after=before)
    assert (refused.type, refused.data["reason"], refused.data["proposal"]) == (
        "oms.branch.merge_refused",
        "SECOND_APPROVAL_REQUIRED",
        opened.id,
    )
    _review(oms, opened.id, people["admin2"])
    before = last_seq(oms_settings.database_url)
    merged = _merge(oms, opened.id, oms.admin, **force)
    events = {r.type: r.data for r in outbox_rows(oms_settings.database_url, after=before)}
    assert events["oms.branch.merged"]["force_approved_by"] == ["carol"]
    assert events["oms.proposal.merged"]["forced"] is True
    assert events["oms.proposal.merged"]["approved_by"] == ["bob", "carol"]
    assert list(merged.proposal.approved_by) == ["bob", "carol"]
    commit = merged.merge.commit
    assert (commit.author, commit.forced, commit.force_reason) == (
        "admin",
        True,
        "email moves to Contact",
    )
    assert list(commit.force_approved_by) == ["carol"]
    assert list(
        oms.branches.GetCommit(
            bs.GetCommitRequest(id=commit.id), metadata=oms.admin
        ).force_approved_by
    ) == ["carol"]


def test_the_thread_lists_comments_and_reviews_in_order(oms, people):
    oms.branch("feature")
    opened = _open(oms, people["author"])
    for text in ("first", "second"):
        oms.proposals.AddComment(
            ps.AddCommentRequest(id=opened.id, body=text), metadata=people["reviewer"]
        )
    _review(oms, opened.id, people["reviewer"])
    page = oms.proposals.ListComments(
        ps.ListCommentsRequest(id=opened.id, page_size=2), metadata=oms.admin
    )
    rest = oms.proposals.ListComments(
        ps.ListCommentsRequest(id=opened.id, page_size=2, page_token=page.next_page_token),
        metadata=oms.admin,
    )
    entries = [*page.comments, *rest.comments]
    assert [(c.number, c.kind, c.body) for c in entries] == [
        (1, ps.COMMENT_KIND_COMMENT, "first"),
        (2, ps.COMMENT_KIND_COMMENT, "second"),
        (3, ps.COMMENT_KIND_APPROVE, "fine"),
    ]
    assert not rest.next_page_token
    forged = pages.encode({"after": "x"}, query={"comments": opened.id})
    bad = _refused(
        lambda: oms.proposals.ListComments(
            ps.ListCommentsRequest(id=opened.id, page_token=forged), metadata=oms.admin
        )
    )
    assert (bad.code(), reason(bad)) == (grpc.StatusCode.INVALID_ARGUMENT, "PAGE_TOKEN_INVALID")


def test_list_update_and_close(oms, people):
    oms.branch("feature")
    oms.branch("other")
    first = _open(oms, people["author"])
    second = _open(oms, people["author"], source="other")
    _review(oms, second.id, people["reviewer"])
    listed = oms.proposals.ListProposals(ps.ListProposalsRequest(), metadata=oms.admin)
    assert [p.id for p in listed.proposals] == [second.id, first.id]
    approved = oms.proposals.ListProposals(
        ps.ListProposalsRequest(state=ps.PROPOSAL_STATE_APPROVED), metadata=oms.admin
    )
    assert [p.id for p in approved.proposals] == [second.id]

    def update(etag, who=people["author"]):
        return oms.proposals.UpdateProposal(
            ps.UpdateProposalRequest(
                proposal=ps.Proposal(id=first.id, title="Better title", etag=etag),
                update_mask=field_mask_pb2.FieldMask(paths=["title"]),
            ),
            metadata=who,
        )

    updated = update(first.etag)
    assert (updated.title, updated.etag != first.etag) == ("Better title", True)
    assert reason(_refused(lambda: update(first.etag))) == "ETAG_MISMATCH"
    assert reason(_refused(lambda: update("", people["reviewer"]))) == "NOT_PROPOSAL_AUTHOR"
    closed = oms.proposals.CloseProposal(
        ps.CloseProposalRequest(id=first.id), metadata=people["author"]
    )
    assert closed.state == ps.PROPOSAL_STATE_CLOSED
    merged_or_closed = oms.proposals.ListProposals(
        ps.ListProposalsRequest(state=ps.PROPOSAL_STATE_CLOSED), metadata=oms.admin
    )
    assert [p.id for p in merged_or_closed.proposals] == [first.id]


def test_bad_proposals_are_refused_field_by_field(oms, people):
    oms.branch("feature")
    bad = _refused(
        lambda: oms.proposals.CreateProposal(
            ps.CreateProposalRequest(
                proposal=ps.Proposal(source="feature", target="feature", reviewers=["bob", "bob"])
            ),
            metadata=people["author"],
        )
    )
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(bad) == [
        "proposal.title",
        "proposal.reviewers[1]",
        "proposal.target",
    ]
    missing = _refused(lambda: _open(oms, people["author"], source="nowhere"))
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    unknown = _refused(lambda: _get(oms, "nope"))
    assert (unknown.code(), reason(unknown)) == (grpc.StatusCode.NOT_FOUND, "PROPOSAL_NOT_FOUND")
    opened = _open(oms, people["author"])
    no_comment = _refused(
        lambda: _review(oms, opened.id, people["reviewer"], ps.REVIEW_VERDICT_REQUEST_CHANGES, "")
    )
    assert violated_fields(no_comment) == ["comment"]
    unknown_state = _refused(
        lambda: oms.proposals.ListProposals(ps.ListProposalsRequest(state=99), metadata=oms.admin)
    )
    assert violated_fields(unknown_state) == ["state"]
    unknown_verdict = _refused(lambda: _review(oms, opened.id, people["reviewer"], 7))
    assert violated_fields(unknown_verdict) == ["verdict"]
    viewer = oms.metadata(("schema:read",), username="dave")
    assert _refused(lambda: _review(oms, opened.id, viewer)).code() == (
        grpc.StatusCode.PERMISSION_DENIED
    )


def test_every_step_is_recorded(oms, people, oms_settings):
    oms.branch("feature")
    oms.create("feature", object_type("Employee"))
    before = last_seq(oms_settings.database_url)
    opened = _open(oms, people["author"])
    oms.proposals.AddComment(ps.AddCommentRequest(id=opened.id, body="hm"), metadata=oms.admin)
    _review(oms, opened.id, people["reviewer"], ps.REVIEW_VERDICT_REQUEST_CHANGES, "why")
    _review(oms, opened.id, people["reviewer"])
    _merge(oms, opened.id, people["author"])
    rows = outbox_rows(oms_settings.database_url, after=before)
    assert [r.type for r in rows] == [
        "oms.proposal.opened",
        "oms.proposal.commented",
        "oms.proposal.changes_requested",
        "oms.proposal.approved",
        "oms.branch.merged",
        "oms.proposal.merged",
    ]
    assert {r.subject for r in rows} == {f"proposals/{opened.id}", "branches/main"}
    assert rows[-2].data["proposal"] == opened.id
    assert rows[-1].data["forced"] is False


def _merged_or_why(call: tuple) -> str:
    """The merge commit of a MergeProposal call, or the reason it was refused."""
    try:
        return _merge(*call).merge.commit.id
    except grpc.RpcError as refused:
        return reason(refused)


def test_of_calls_racing_to_merge_a_proposal_one_merges_it_and_the_rest_are_told(
    oms, people, oms_settings
):
    """Racers that found the merge up to date once each recorded it again."""
    for round in range(4):
        source = f"race{round}"
        oms.branch(source)
        oms.create(source, object_type(f"Race{round}"))
        opened = _open(oms, people["author"], source=source)
        _review(oms, opened.id, people["reviewer"])
        before, head = last_seq(oms_settings.database_url), oms.head("main")

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = sorted(pool.map(_merged_or_why, [(oms, opened.id, people["author"])] * 4))
        merged = _get(oms, opened.id).merge_commit
        refusals = [a for a in answers if a != merged]
        assert len(refusals) == 3, answers  # one call reports the merge
        assert set(refusals) <= {"PROPOSAL_NOT_OPEN", "BRANCH_HEAD_MOVED"}, answers
        parents = oms.branches.GetCommit(bs.GetCommitRequest(id=merged), metadata=oms.admin).parents
        assert head in parents  # one merge commit on the head the racers found
        rows = outbox_rows(oms_settings.database_url, after=before)
        assert [r.type for r in rows].count("oms.proposal.merged") == 1


def test_a_proposal_whose_source_is_gone_can_still_be_read_and_closed(oms, people):
    oms.branch("feature")
    opened = _open(oms, people["author"])
    oms.branches.DeleteBranch(bs.DeleteBranchRequest(name="feature"), metadata=oms.admin)
    shown = _get(oms, opened.id)
    assert (shown.state, shown.HasField("validation")) == (ps.PROPOSAL_STATE_OPEN, False)
    gone = _refused(lambda: _review(oms, opened.id, people["reviewer"]))
    assert (gone.code(), reason(gone)) == (grpc.StatusCode.NOT_FOUND, "BRANCH_NOT_FOUND")
    closed = oms.proposals.CloseProposal(ps.CloseProposalRequest(id=opened.id), metadata=oms.admin)
    assert closed.state == ps.PROPOSAL_STATE_CLOSED
    comment = oms.proposals.AddComment(
        ps.AddCommentRequest(id=opened.id, body="superseded"), metadata=people["author"]
    )
    assert (comment.number, comment.source_head) == (1, "")


def test_each_proposal_rpc_emits_what_its_mapping_declares(oms, people, oms_settings):
    oms.branch("feature")
    opened = _open(oms, people["author"])
    calls = {
        "UpdateProposal": lambda: oms.proposals.UpdateProposal(
            ps.UpdateProposalRequest(
                proposal=ps.Proposal(id=opened.id, description="why", reviewers=["bob"]),
                update_mask=field_mask_pb2.FieldMask(paths=["description", "reviewers"]),
            ),
            metadata=people["author"],
        ),
        "RevalidateProposal": lambda: oms.proposals.RevalidateProposal(
            ps.RevalidateProposalRequest(id=opened.id), metadata=people["author"]
        ),
        "CloseProposal": lambda: oms.proposals.CloseProposal(
            ps.CloseProposalRequest(id=opened.id), metadata=people["author"]
        ),
    }
    for name, call in calls.items():
        before = last_seq(oms_settings.database_url)
        call()
        rows = outbox_rows(oms_settings.database_url, after=before)
        assert len(rows) == 1, name
        assert rows[0].type in EVENTS[f"/{PROPOSAL_SERVICE}/{name}"], name
        assert rows[0].actor == "alice"
    (updated,) = [
        r for r in outbox_rows(oms_settings.database_url) if r.type == "oms.proposal.updated"
    ]
    assert (updated.data["before"], updated.data["after"]) == (
        {"description": "", "reviewers": []},
        {"description": "why", "reviewers": ["bob"]},
    )


def test_a_state_filter_reads_a_bounded_number_of_proposals_a_page(oms, people, monkeypatch):
    monkeypatch.setattr(proposals, "LIST_SCAN_LIMIT", 2)
    for name in ("a", "b", "c", "d"):
        oms.branch(name)
    wanted = _open(oms, people["author"], source="a")
    for name in ("b", "c", "d"):
        _review(oms, _open(oms, people["author"], source=name).id, people["reviewer"])
    sizes, token, found = [], "", []
    while True:
        page = oms.proposals.ListProposals(
            ps.ListProposalsRequest(state=ps.PROPOSAL_STATE_OPEN, page_size=1, page_token=token),
            metadata=oms.admin,
        )
        sizes.append(len(page.proposals))
        found += [p.id for p in page.proposals]
        token = page.next_page_token
        if not token:
            break
    assert found == [wanted.id]
    assert sizes[0] == 0, "the first page read two approved proposals and stopped short"


def test_a_proposal_shows_changes_up_to_its_byte_bound_and_says_when_there_are_more(oms, people):
    oms.branch("feature")
    wide = [prop(f"p{i}", description="d" * 4000) for i in range(200)]  # about 0.8 MB each
    for n in range(3):
        oms.create("feature", object_type(f"Wide{n}", *wide))
    opened = _open(oms, people["author"])
    shown = _get(oms, opened.id)
    assert [c.resource for c in shown.changes] == ["object-types/Wide0", "object-types/Wide1"]
    assert shown.changes_truncated
    oms.branch("small")
    oms.create("small", object_type("Small"))
    small = _get(oms, _open(oms, people["author"], source="small").id)
    assert [c.resource for c in small.changes] == ["object-types/Small"]
    assert not small.changes_truncated
