"""Two helpers over groups of parallel items, each the one home of its concern: connected components
(answer identities, answer clusters and the sampler's answer groups are all components of a
bipartite graph of groups and their answers, paragraphs or passage texts) and the seeded draw of
whole groups (training and validation subsets, benchmark subsamples)."""

from __future__ import annotations

from typing import Iterable

import numpy as np


def components(a, b, n: int) -> np.ndarray:
    """The connected component (0, 1, ...) of each of the ``n`` nodes of the undirected graph with
    the edges ``a[i] - b[i]`` (scipy's ``connected_components`` over a sparse matrix; a node without
    edges is a component of its own).

    Examples:
        >>> components([0, 2], [1, 3], 5).tolist()
        [0, 0, 1, 1, 2]
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    graph = sp.coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def sample_groups(groups: Iterable, n: int, rng) -> set:
    """``n`` of the distinct ``groups`` (all of them when there are fewer), drawn without
    replacement from their sorted order by ``rng``: a seed, or a ``numpy.random.Generator`` that a
    caller goes on drawing from. The same seed gives the same groups whatever the order of
    ``groups``.

    Examples:
        >>> a = sample_groups(["b", "a", "c", "a"], 2, 0)
        >>> sorted(a) == sorted(sample_groups("cab", 2, 0))
        True
    """
    pool = sorted(set(groups))
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return set(rng.choice(pool, size=min(n, len(pool)), replace=False).tolist()) if pool else set()
