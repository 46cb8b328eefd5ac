"""The one connected-components helper: answer identities, answer clusters and the sampler's answer groups are
all components of a bipartite graph (groups joined to their answers, paragraphs or passage texts)."""
from __future__ import annotations

import numpy as np


def components(a, b, n: int) -> np.ndarray:
    """The connected component (0, 1, ...) of each of the ``n`` nodes of the undirected graph with the edges
    ``a[i] - b[i]`` (scipy's ``connected_components`` over a sparse matrix; a node without edges is a component
    of its own).

    Example:
        >>> components([0, 2], [1, 3], 5).tolist()
        [0, 0, 1, 1, 2]
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    graph = sp.coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1]
