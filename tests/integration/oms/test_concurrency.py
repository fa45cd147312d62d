"""Concurrent writers on one branch, and a restart on the same data folder."""

from __future__ import annotations

import threading

import grpc
import pytest

from oms.v1 import branch_service_pb2 as bs
from oms.v1 import resources_pb2 as r
from oms.v1 import schema_service_pb2 as ss
from tests.support.errors import reason
from tests.support.oms import object_type

WRITERS = 8


def _run_all(target):
    threads = [threading.Thread(target=target, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)


def test_concurrent_writers_with_retries_lose_nothing(oms):
    oms.branch("busy")

    def write(i):
        for _ in range(100):
            try:
                oms.create("busy", object_type(f"Type{i}"))
                return
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.ABORTED, error
                assert reason(error) == "BRANCH_HEAD_MOVED"
        raise AssertionError(f"writer {i} never succeeded")

    _run_all(write)
    assert oms.names("busy") == sorted(f"Type{i}" for i in range(WRITERS))

    page = oms.branches.ListCommits(
        bs.ListCommitsRequest(branch="busy", page_size=100),
        metadata=oms.admin,
    )
    commits = [c for c in page.commits if c.message.startswith("Create")]
    assert len(commits) == WRITERS


def test_writers_racing_on_one_expected_head_all_but_one_abort(oms):
    oms.branch("race")
    head = oms.head("race")
    barrier = threading.Barrier(WRITERS, timeout=30)
    outcomes = {}

    def write(i):
        request = ss.CommitChangesRequest(
            branch="race",
            message=f"writer {i}",
            expected_head=head,
            changes=[ss.Change(upsert=r.Resource(object_type=object_type(f"Type{i}")))],
        )
        barrier.wait()
        try:
            oms.schema.CommitChanges(request, metadata=oms.admin, timeout=30)
            outcomes[i] = "ok"
        except grpc.RpcError as error:
            outcomes[i] = (error.code(), reason(error))

    _run_all(write)
    winners = [i for i, o in outcomes.items() if o == "ok"]
    assert len(winners) == 1
    assert all(
        o == (grpc.StatusCode.ABORTED, "BRANCH_HEAD_MOVED")
        for i, o in outcomes.items()
        if o != "ok"
    )
    assert oms.names("race") == [f"Type{winners[0]}"]


def test_restart_on_the_same_data_keeps_everything(start_oms, oms_settings):
    first = start_oms(oms_settings)
    first.create("main", object_type("Employee"))
    first.branch("feature")
    first.create("feature", object_type("Project"))
    heads = first.head("main"), first.head("feature")
    first.server.stop()
    second = start_oms(oms_settings)
    assert (second.head("main"), second.head("feature")) == heads
    assert second.names("feature") == ["Employee", "Project"]
    assert second.merge("feature").commit.id == heads[1]
    with pytest.raises(grpc.RpcError):
        second.create("main", object_type("Employee"))
