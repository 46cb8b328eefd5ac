"""The retrieval benchmark contract: :class:`RetrievalBenchmark` holds the queries, candidates and
relevance of one benchmark, with language selection and seeded subsampling by group that keeps the
parallel structure. Every benchmark reader (:mod:`hbkit.data.releases`) returns one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import pandas as pd

from hbkit.core.groups import sample_groups
from hbkit.data.registry import DataError


@dataclass
class RetrievalBenchmark:
    """Queries, candidates and relevance of one retrieval benchmark.

    * ``queries``: DataFrame ``id, lang, text, group`` (``group`` is shared by translations).
    * ``candidates``: DataFrame ``id, lang, text, context, doc`` (``doc`` = source paragraph /
      passage).
    * ``relevance``: ``{query id: [candidate id, ...]}``; every query has at least one relevant
      candidate.
    * ``skipped``: counts of records left out and why (empty when nothing was skipped).
    """

    name: str
    queries: pd.DataFrame
    candidates: pd.DataFrame
    relevance: dict[str, list[str]]
    skipped: dict[str, int] = field(default_factory=dict)
    notes: dict = field(default_factory=dict)

    @property
    def languages(self) -> list[str]:
        return sorted(set(self.queries["lang"]) | set(self.candidates["lang"]))

    def __repr__(self) -> str:
        return (
            f"RetrievalBenchmark({self.name!r}: {len(self.queries)} queries, "
            f"{len(self.candidates)} candidates, languages={','.join(self.languages)})"
        )

    def _restrict(
        self, queries: pd.DataFrame, candidates: pd.DataFrame, note: dict
    ) -> "RetrievalBenchmark":
        keep = set(candidates["id"])
        rel = {q: [c for c in self.relevance[q] if c in keep] for q in queries["id"]}
        empty = [q for q, r in rel.items() if not r]
        queries = queries[~queries["id"].isin(empty)].reset_index(drop=True)
        rel = {q: r for q, r in rel.items() if r}
        skipped = dict(self.skipped)
        if empty:
            skipped["query without relevant candidate after selection"] = len(empty)
        return RetrievalBenchmark(
            self.name,
            queries,
            candidates.reset_index(drop=True),
            rel,
            skipped,
            {**self.notes, **note},
        )

    def select_languages(self, languages: Iterable[str]) -> "RetrievalBenchmark":
        """Keep the queries and candidates in ``languages`` (relevance restricted accordingly)."""
        languages = list(languages)
        unknown = sorted(set(languages) - set(self.languages))
        if unknown:
            raise DataError(
                f"{self.name}: languages {unknown} are not in this benchmark "
                f"({', '.join(self.languages)})"
            )
        q = self.queries[self.queries["lang"].isin(languages)]
        c = self.candidates[self.candidates["lang"].isin(languages)]
        return self._restrict(q, c, {"languages": languages})

    def subsample(
        self, n_groups: int, seed: int = 0, distractors: float | None = None
    ) -> "RetrievalBenchmark":
        """Keep ``n_groups`` query groups (seeded; whole parallel groups, so every translation
        stays).

        Candidates kept: every candidate relevant to a kept query, plus a seeded share
        ``distractors`` of the others (default: the same share as the kept groups, so the pool
        shrinks proportionally).
        """
        n_all = self.queries["group"].nunique()
        if n_groups >= n_all:
            return self
        rng = np.random.default_rng(seed)
        # the distractors are drawn next
        kept_groups = sample_groups(self.queries["group"], n_groups, rng)
        q = self.queries[self.queries["group"].isin(kept_groups)]
        needed = {c for qid in q["id"] for c in self.relevance[qid]}
        share = n_groups / n_all if distractors is None else distractors
        other = self.candidates[~self.candidates["id"].isin(needed)]
        docs = other["doc"].drop_duplicates().sort_values().to_numpy()
        kept_docs = (
            set(rng.choice(docs, size=int(round(share * len(docs))), replace=False))
            if len(docs)
            else set()
        )
        c = self.candidates[
            self.candidates["id"].isin(needed) | self.candidates["doc"].isin(kept_docs)
        ]
        return self._restrict(
            q,
            c,
            {
                "subsample": {
                    "groups": n_groups,
                    "of": n_all,
                    "seed": seed,
                    "distractor_share": share,
                }
            },
        )

    def counts(self) -> pd.DataFrame:
        """Per-language counts of queries and candidates."""
        q = self.queries.groupby("lang").size().rename("queries")
        c = self.candidates.groupby("lang").size().rename("candidates")
        df = pd.concat([q, c], axis=1).fillna(0).astype(int)
        df.index.name = "lang"
        return df.reset_index().assign(dataset=self.name)[
            ["dataset", "lang", "queries", "candidates"]
        ]


def benchmark_frames(
    queries: list[dict], candidates: list[dict]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The queries and candidates frames of a :class:`RetrievalBenchmark` from one dict per record,
    with the contract's columns in order (also when a list is empty)."""
    return (
        pd.DataFrame(queries, columns=["id", "lang", "text", "group"]),
        pd.DataFrame(candidates, columns=["id", "lang", "text", "context", "doc"]),
    )
