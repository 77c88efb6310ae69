from __future__ import annotations

import numpy as np

from corpusforge.dedup.clusters import bucket_pairs, connected_components, unique_pairs


def test_connected_components_label_each_node_with_its_smallest_member():
    pairs = np.array([[9, 4], [4, 7], [1, 2], [20, 7], [3, 2]])
    nodes, label = connected_components(pairs)
    assert nodes.tolist() == [1, 2, 3, 4, 7, 9, 20]
    assert label.tolist() == [1, 1, 1, 4, 4, 4, 4]


def test_connected_components_of_a_long_chain():
    chain = np.stack([np.arange(1000, 0, -1), np.arange(999, -1, -1)], axis=1)
    nodes, label = connected_components(chain)
    assert len(nodes) == 1001 and set(label.tolist()) == {0}


def test_bucket_pairs_link_every_member_of_a_bucket():
    keys = np.array([5, 1, 5, 5, 2, 1, 5, 5, 5, 5], dtype=np.uint64)
    pairs = unique_pairs(bucket_pairs(keys, np.arange(10), window=2))
    _, label = connected_components(pairs)
    assert {tuple(p) for p in pairs[:, :]} >= {(1, 5), (0, 2), (0, 9)}
    assert len(set(label.tolist())) == 2


def test_unique_pairs_orders_and_removes_repeats_and_self_pairs():
    got = unique_pairs(np.array([[3, 1], [1, 3], [2, 2], [0, 5]]))
    assert got.tolist() == [[0, 5], [1, 3]]
