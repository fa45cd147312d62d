"""Refs: branches, tags, full and short commit ids, and ``~N`` first-parent ancestors."""

from __future__ import annotations

import pytest

from common import errors
from oms.refs import Refs, split_ancestry
from oms.store import BranchRecord, CommitRecord, TagRecord


class Commits:
    """The few store reads a resolver needs, over a fixed history."""

    def __init__(self, commits: list[CommitRecord], branches: dict[str, str], tags: dict[str, str]):
        self.commits = {c.id: c for c in commits}
        self.branches = branches
        self.tags = tags

    def commit(self, commit_id: str) -> CommitRecord:
        if commit_id not in self.commits:
            raise errors.NotFound("no commit", reason="COMMIT_NOT_FOUND")
        return self.commits[commit_id]

    def branch(self, name: str) -> BranchRecord:
        if name not in self.branches:
            raise errors.NotFound("no branch", reason="BRANCH_NOT_FOUND")
        return BranchRecord(name, self.branches[name], "main", False, "BACKWARD", "x", 0)

    def find_tag(self, name: str) -> TagRecord | None:
        commit = self.tags.get(name)
        return None if commit is None else TagRecord(name, commit, "", "x", 0)

    def commit_ids(self, prefix: str, *, limit: int) -> list[str]:
        return sorted(c for c in self.commits if c.startswith(prefix))[:limit]


def commit(commit_id: str, *parents: str) -> CommitRecord:
    return CommitRecord(commit_id, "root", parents, "x", "", 0, 1 + len(parents))


ROOT = "a" * 64
ONE = "abcdef1" + "0" * 57
TWO = "abcdef2" + "0" * 57
SIDE = "abcdef2" + "1" * 57
MERGE = "9" * 64


@pytest.fixture
def refs() -> Refs:
    history = [
        commit(ROOT),
        commit(ONE, ROOT),
        commit(TWO, ONE),
        commit(SIDE, ROOT),
        commit(MERGE, TWO, SIDE),
    ]
    store = Commits(history, {"main": MERGE, "abcdef1": ROOT}, {"v1": ONE, "main": ROOT})
    return Refs(store)  # type: ignore[arg-type]  # the reads a resolver makes, nothing else


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("main", MERGE),
        ("v1", ONE),
        (TWO, TWO),
        ("abcdef2000", TWO),
        ("main~1", TWO),
        ("main~", TWO),
        ("main~2", ONE),
        ("main~1~1", ONE),
        ("v1~1", ROOT),
        (SIDE[:8] + "~1", ROOT),
    ],
)
def test_a_ref_names_one_commit(refs: Refs, ref: str, expected: str) -> None:
    assert refs.resolve(ref).id == expected


def test_a_branch_hides_a_tag_and_a_short_id_of_its_name(refs: Refs) -> None:
    assert refs.resolve("main").id == MERGE
    assert refs.resolve("abcdef1").id == ROOT


def test_an_ambiguous_short_id_names_its_candidates(refs: Refs) -> None:
    with pytest.raises(errors.InvalidArgument) as refusal:
        refs.resolve("abcdef2", field="base")
    assert refusal.value.reason == "REF_AMBIGUOUS"
    assert refusal.value.metadata["candidates"] == f"{TWO},{SIDE}"
    assert [(v.field, v.reason) for v in refusal.value.violations] == [("base", "REF_AMBIGUOUS")]


@pytest.mark.parametrize(
    "ref",
    ["nope", "abcdef", "abcdef3", "f" * 64, "main~9", "~1", "v1~x", "main~²", "main~" + "9" * 5000],
)
def test_what_names_no_commit_is_not_found(refs: Refs, ref: str) -> None:
    with pytest.raises(errors.NotFound) as refusal:
        refs.resolve(ref)
    assert refusal.value.reason == "REF_NOT_FOUND"


def test_ancestry_suffixes_add_up() -> None:
    assert split_ancestry("main~2~3") == ("main", 5)
    assert split_ancestry("main") == ("main", 0)
    assert split_ancestry("main~") == ("main", 1)
    assert split_ancestry("main~1x") == ("main~1x", 0)
