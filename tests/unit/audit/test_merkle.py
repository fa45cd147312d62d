"""The tree, its tiles and its proofs, checked against RFC 9162 written out independently."""

from __future__ import annotations

import random

import pytest

from audit import merkle, tiles
from tests.support import rfc9162

SIZES = range(1, 301)


@pytest.fixture(scope="module")
def grown():
    """Leaves of a 300-leaf tree and its tiles, grown in uneven batches as commits would."""
    leaves = [rfc9162.leaf(f"event {i}".encode()) for i in range(300)]
    tree, stored, roots = tiles.TiledTree.empty(), {}, {}
    chance = random.Random(7)
    while tree.size < len(leaves):
        batch = leaves[tree.size : tree.size + chance.choice([1, 1, 2, 5, 17, 64])]
        tree, dirty = tree.extend(batch)
        stored.update({key: tiles.split(blob) for key, blob in dirty.items()})
        roots[tree.size] = tree.root()
    return leaves, stored, roots


def read(stored):
    return lambda keys: {key: stored[key] for key in keys if key in stored}


def test_root_after_every_commit_is_the_rfc_root(grown):
    leaves, _, roots = grown
    for size, root in roots.items():
        assert root == rfc9162.mth(leaves[:size])


def test_root_of_every_size_from_the_tiles(grown):
    leaves, stored, _ = grown
    for size in SIZES:
        assert tiles.root_at(read(stored), size) == rfc9162.mth(leaves[:size])


def test_inclusion_proofs_for_every_size_match_and_verify(grown):
    leaves, stored, _ = grown
    chance = random.Random(1)
    for size in SIZES:
        root = rfc9162.mth(leaves[:size])
        indices = range(size) if size <= 64 else chance.sample(range(size), 12)
        for index in indices:
            proof = merkle.build_proof(
                merkle.inclusion_ranges(index, size), tiles.node_reader(read(stored))
            )
            assert proof == rfc9162.path(index, leaves[:size])
            assert rfc9162.verify_inclusion(index, size, leaves[index], proof, root)
            merkle.verify_inclusion(leaves[index], index, size, proof, root)


def test_consistency_proofs_for_random_pairs_match_and_verify(grown):
    leaves, stored, _ = grown
    chance = random.Random(2)
    pairs = [(m, n) for n in range(1, 65) for m in range(1, n + 1)]
    pairs += [tuple(sorted(chance.sample(SIZES, 2))) for _ in range(2000)]
    for first, second in pairs:
        proof = merkle.build_proof(
            merkle.consistency_ranges(first, second), tiles.node_reader(read(stored))
        )
        assert proof == rfc9162.proof(first, leaves[:second])
        old, new = rfc9162.mth(leaves[:first]), rfc9162.mth(leaves[:second])
        assert rfc9162.verify_consistency(first, second, old, new, proof)
        merkle.verify_consistency(first, second, old, new, proof)


def test_a_tree_reloaded_from_its_partial_tiles_is_the_same_tree(grown):
    _, stored, _ = grown
    reloaded = tiles.TiledTree.load(300, read(stored)(tiles.partial_keys(300)))
    assert reloaded.size == 300
    assert reloaded.root() == tiles.root_at(read(stored), 300)


def test_missing_tiles_are_reported_not_guessed(grown):
    _, stored, _ = grown
    without_leaves = {key: value for key, value in stored.items() if key != (0, 0)}
    with pytest.raises(LookupError):
        tiles.root_at(read(without_leaves), 100)
    without_roots = {key: value for key, value in stored.items() if key != (1, 0)}
    with pytest.raises(LookupError):
        tiles.TiledTree.load(257, read(without_roots)(tiles.partial_keys(257)))


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p[:-1],
        lambda p: [*p, p[0]],
        lambda p: [bytes(32), *p[1:]],
        lambda p: list(reversed(p)),
    ],
    ids=["shortened", "lengthened", "altered", "reordered"],
)
def test_the_verifiers_refuse_a_changed_proof(grown, change):
    leaves, stored, _ = grown
    nodes = tiles.node_reader(read(stored))
    size, index, first = 200, 77, 61
    root = rfc9162.mth(leaves[:size])
    inclusion = change(merkle.build_proof(merkle.inclusion_ranges(index, size), nodes))
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(leaves[index], index, size, inclusion, root)
    consistency = change(merkle.build_proof(merkle.consistency_ranges(first, size), nodes))
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(first, size, rfc9162.mth(leaves[:first]), root, consistency)


def test_proofs_are_refused_for_sizes_that_cannot_have_one():
    with pytest.raises(merkle.ProofError):
        merkle.inclusion_ranges(5, 5)
    with pytest.raises(merkle.ProofError):
        merkle.consistency_ranges(0, 5)
    with pytest.raises(merkle.ProofError):
        merkle.consistency_ranges(6, 5)


def test_the_frontier_follows_the_root_leaf_by_leaf(grown):
    leaves, _, _ = grown
    frontier = merkle.Frontier()
    assert frontier.root() == rfc9162.mth([])
    for size, leaf in enumerate(leaves, start=1):
        frontier.append(leaf)
        assert frontier.root() == rfc9162.mth(leaves[:size])
