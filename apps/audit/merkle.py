"""A Merkle tree over event hashes in the RFC 6962 shape (Certificate Transparency).

Leaves and interior nodes get different prefixes so a leaf can never pose as a node; the
tree splits at the largest power of two below n, which gives every leaf a short audit path
that can be checked offline with only hashlib.
"""

import hashlib
from collections.abc import Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


def leaf_hash(content_hash_hex: str) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + bytes.fromhex(content_hash_hex)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _root(leaves: Sequence[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(_root(leaves[:k]), _root(leaves[k:]))


def merkle_root(content_hashes: Sequence[str]) -> str:
    """Root over the events' content hashes in batch order; the empty tree is sha256('')."""
    if not content_hashes:
        return hashlib.sha256(b"").hexdigest()
    return _root([leaf_hash(h) for h in content_hashes]).hex()


def inclusion_proof(content_hashes: Sequence[str], index: int) -> list[str]:
    """The audit path (sibling hashes, bottom-up) proving leaf `index` is in the tree."""
    if not 0 <= index < len(content_hashes):
        raise IndexError(index)
    leaves = [leaf_hash(h) for h in content_hashes]
    path: list[str] = []

    def walk(nodes: Sequence[bytes], i: int) -> None:
        if len(nodes) == 1:
            return
        k = _split(len(nodes))
        if i < k:
            walk(nodes[:k], i)
            path.append(_root(nodes[k:]).hex())
        else:
            walk(nodes[k:], i - k)
            path.append(_root(nodes[:k]).hex())

    walk(leaves, index)
    return path


def verify_inclusion(
    content_hash: str, index: int, tree_size: int, proof: Sequence[str], root: str
) -> bool:
    """Checks an audit path offline (RFC 9162 section 2.1.3.2)."""
    if not 0 <= index < tree_size:
        return False
    fn, sn = index, tree_size - 1
    r = leaf_hash(content_hash)
    for sibling_hex in proof:
        sibling = bytes.fromhex(sibling_hex)
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(sibling, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r.hex() == root
