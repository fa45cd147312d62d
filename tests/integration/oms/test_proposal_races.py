"""A proposal's merge racing another change of it, in-process on a real store."""

import dataclasses

from common.db import Database
from oms.proposals import MERGED, ProposalService
from oms.rules import APPROVE
from oms.service import Edit, Force, MergeStrategy, OntologyService
from oms.sql_store import SqlStore
from tests.support.oms import ADMIN_PRINCIPAL as ADMIN
from tests.support.oms import commit_as_admin
from tests.support.ontology import object_type


def test_a_proposal_closed_while_it_merges_is_marked_merged(tmp_path):
    """Its changes are in the target: the record must say so, not that it was closed."""
    store = SqlStore(Database(f"sqlite:///{tmp_path / 'oms.db'}"))
    service = OntologyService(store)
    service.create_branch(ADMIN, "feature", source="main", base_branch="", compatibility_mode="")
    commit_as_admin(service, "feature", [Edit("object-types/A", object_type("A"))], "a")
    proposals = ProposalService(service, store)
    opened = proposals.create(
        ADMIN, title="A", description="", source="feature", target="main", reviewers=[]
    )
    reviewer = dataclasses.replace(ADMIN, user_id="u2", username="bob")
    proposals.review(reviewer, opened.record.id, APPROVE, "fine")
    merge = service.merge

    def closed_meanwhile(*args, **kwargs):
        proposals.close(ADMIN, opened.record.id)
        return merge(*args, **kwargs)

    service.merge = closed_meanwhile
    _, result = proposals.merge(
        ADMIN, opened.record.id, strategy=MergeStrategy.MERGE_COMMIT, message="", force=Force()
    )
    assert store.proposal(opened.record.id).state == MERGED
    assert store.proposal(opened.record.id).merge_commit == result.commit.id
    store.close()
