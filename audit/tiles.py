"""The Merkle tree kept as tiles: the stored form that makes appends cheap and proofs fast.

As in C2SP ``tlog-tiles``, the tree is cut into tiles of height 8. The tile at (``level``,
``index``) holds up to 256 consecutive hashes of tree level ``8 * level``: level 0 the leaf
hashes, level 1 the roots of full level-0 tiles, and so on. Any perfect subtree's hash is then
computed from the entries of one tile (at most 128 node hashes). A tile is *partial* while it
has fewer than 256 entries; it only ever grows, so the entries it has are final.

The store keeps level 0 in the events' own rows (each row holds its leaf hash), so a commit
writes its leaves with its events, and a tile above is rewritten only when 256 more nodes of
its level have completed: the tree costs 32 bytes per event and a row every 256 events. The
right edge of the tree (and so its root) follows from the partial tiles alone, so a restart
reads one tile per level, never the whole log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from audit import merkle

HEIGHT = 8
WIDTH = 1 << HEIGHT
TileKey = tuple[int, int]
"""(tile level, tile index)."""


def split(blob: bytes) -> list[bytes]:
    """A tile's stored bytes as its list of hashes."""
    size = merkle.HASH_SIZE
    return [blob[i : i + size] for i in range(0, len(blob), size)]


def partial_keys(size: int) -> list[TileKey]:
    """The partial tiles of a tree of ``size`` leaves, lowest level first."""
    keys: list[TileKey] = []
    level = 0
    count = size
    while count:
        if count % WIDTH:
            keys.append((level, count // WIDTH))
        count //= WIDTH
        level += 1
    return keys


def node_tile(node: merkle.Node) -> tuple[TileKey, int, int]:
    """Where a perfect subtree's hash comes from: its tile and the span of entries in it."""
    level, index = node
    tile_level, height = divmod(level, HEIGHT)
    first = index << height
    return (tile_level, first // WIDTH), first % WIDTH, 1 << height


def node_hashes(
    nodes: Sequence[merkle.Node], tiles: dict[TileKey, list[bytes]]
) -> dict[merkle.Node, bytes]:
    """The hashes of ``nodes`` from the tiles that hold them (see :func:`needed_tiles`)."""
    found: dict[merkle.Node, bytes] = {}
    for node in nodes:
        key, first, count = node_tile(node)
        entries = tiles.get(key, [])[first : first + count]
        if len(entries) != count:
            raise LookupError(f"tile {key} does not hold node {node}")
        found[node] = merkle.root_of(entries)
    return found


def needed_tiles(nodes: Iterable[merkle.Node]) -> set[TileKey]:
    return {node_tile(node)[0] for node in nodes}


TileReader = Callable[[Sequence[TileKey]], dict[TileKey, list[bytes]]]
"""Reads stored tiles by key, such as :meth:`audit.store.EventStore.tiles`."""


def node_reader(read: TileReader) -> Callable[[Sequence[merkle.Node]], dict[merkle.Node, bytes]]:
    """Look up perfect subtree hashes, for :func:`audit.merkle.build_proof`, in one read."""

    def nodes(wanted: Sequence[merkle.Node]) -> dict[merkle.Node, bytes]:
        return node_hashes(wanted, read(sorted(needed_tiles(wanted))))

    return nodes


def root_at(read: TileReader, size: int) -> bytes:
    """MTH of the first ``size`` leaves of a stored tree (any size it ever had)."""
    if size == 0:
        return merkle.EMPTY_ROOT
    (root,) = merkle.build_proof([(0, size)], node_reader(read))
    return root


@dataclass(frozen=True)
class TiledTree:
    """A tree of ``size`` leaves as its partial tiles; appending returns a new tree."""

    size: int
    partial: tuple[tuple[bytes, ...], ...]
    """The entries of the partial tile of each level, lowest first; empty where none is."""

    @classmethod
    def empty(cls) -> TiledTree:
        return cls(0, ())

    @classmethod
    def load(cls, size: int, tiles: dict[TileKey, list[bytes]]) -> TiledTree:
        """Rebuild from the partial tiles :func:`partial_keys` names; checks their widths."""
        levels: list[tuple[bytes, ...]] = []
        count = size
        level = 0
        while count:
            want = count % WIDTH
            entries = tiles.get((level, count // WIDTH), []) if want else []
            if len(entries) < want:
                raise LookupError(f"tile {(level, count // WIDTH)} is missing hashes")
            levels.append(tuple(entries[:want]))
            count //= WIDTH
            level += 1
        return cls(size, tuple(levels))

    def extend(self, leaves: Sequence[bytes]) -> tuple[TiledTree, dict[TileKey, bytes]]:
        """Append leaf hashes; also return every tile to store, as its full content."""
        levels = [list(entries) for entries in self.partial]
        counts = [self.size >> (HEIGHT * level) for level in range(len(levels))]
        dirty: dict[TileKey, bytes] = {}
        touched: dict[int, int] = {}  # level -> index of its partial tile written to
        for leaf in leaves:
            carry = leaf
            level = 0
            while True:
                if level == len(levels):
                    levels.append([])
                    counts.append(0)
                entries = levels[level]
                entries.append(carry)
                index = counts[level] // WIDTH
                counts[level] += 1
                if len(entries) < WIDTH:
                    touched[level] = index
                    break
                dirty[(level, index)] = b"".join(entries)
                touched.pop(level, None)
                carry = merkle.root_of(entries)
                levels[level] = []
                level += 1
        for level, index in touched.items():
            dirty[(level, index)] = b"".join(levels[level])
        return TiledTree(self.size + len(leaves), tuple(tuple(e) for e in levels)), dirty

    def root(self) -> bytes:
        """MTH of the whole tree, from the partial tiles (the tree's right edge)."""
        edge: list[bytes] = []
        for level in reversed(range(len(self.partial))):
            entries = self.partial[level]
            start = 0
            for height, _ in merkle.range_nodes(0, len(entries)):
                span = 1 << height
                edge.append(merkle.root_of(entries[start : start + span]))
                start += span
        return merkle.range_hash(edge) if edge else merkle.EMPTY_ROOT
