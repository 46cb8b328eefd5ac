"""In-training evaluation: a LAReQA-style retrieval benchmark built from held-out pairs, as a
sentence-transformers evaluator, so ``SentenceTransformerTrainer(evaluator=...)``,
``metric_for_best_model``, ``load_best_model_at_end`` and early stopping select checkpoints by
multilingual mAP rather than by loss.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

from hbkit.core.files import atomic_write_text
from hbkit.core.vocab import SETTINGS
from hbkit.data.registry import DataError
from hbkit.data.retrieval_benchmark import RetrievalBenchmark
from hbkit.encoders.encode import encode
from hbkit.retrieval.pools import evaluate_embeddings

log = logging.getLogger(__name__)


#: Metrics reported per setting (``<setting>_<metric>``); ``rank_distance`` only for ``multi``.
METRICS = ("map", "recall@1", "mrr@10", "ndcg@10")


def pairs_benchmark(pairs, name: str = "validation") -> RetrievalBenchmark:
    """A LAReQA-style benchmark from held-out pairs (a Dataset or DataFrame with the corpus
    columns).

    * queries: one per row, ``id = "<lang>:<group>"``, text = the row's ``query``;
    * candidates: the passages deduplicated by ``answer_key`` within each language (the first row's
      passage for a key is kept), ``id = "<lang>:<answer_key>"``, ``doc = answer_key``;
    * relevance: a query's relevant candidates are every candidate with its row's ``answer_key``,
      one per language that has it (so in the multilingual pool all translations of the answer are
      relevant, as in XQuAD-R). Without an ``answer_key`` column each group is its own key.
    """
    df = pairs.to_pandas() if hasattr(pairs, "to_pandas") else pd.DataFrame(pairs)
    missing = [c for c in ("group", "lang", "query", "passage") if c not in df.columns]
    if missing:
        raise DataError(
            f"{name}: validation pairs lack column(s) {missing} (have {list(df.columns)}); build "
            "them with hbkit.data.corpora.load_training_corpus"
        )
    if df.empty:
        raise DataError(f"{name}: no validation pairs; hold out at least one group")
    if "answer_key" not in df.columns:
        df = df.assign(answer_key=df["group"])
    df = df.astype({"group": str, "lang": str, "answer_key": str})
    if df.duplicated(["group", "lang"]).any():
        g, l = df.loc[df.duplicated(["group", "lang"]), ["group", "lang"]].iloc[0]
        raise DataError(
            f"{name}: group {g!r} has several rows in language {l!r}; each (group, lang) must be "
            "one row"
        )
    cands = df.drop_duplicates(["lang", "answer_key"], keep="first")
    candidates = pd.DataFrame(
        {
            "id": cands["lang"] + ":" + cands["answer_key"],
            "lang": cands["lang"],
            "text": cands["passage"],
            "context": cands.get("context", cands["passage"]),
            "doc": cands["answer_key"],
        }
    ).reset_index(drop=True)
    by_key = candidates.groupby("doc")["id"].apply(list).to_dict()
    queries = pd.DataFrame(
        {
            "id": df["lang"] + ":" + df["group"],
            "lang": df["lang"],
            "text": df["query"],
            "group": df["group"],
        }
    ).reset_index(drop=True)
    relevance = {qid: by_key[k] for qid, k in zip(queries["id"], df["answer_key"])}
    return RetrievalBenchmark(
        name, queries, candidates, relevance, {}, {"source": "held-out training pairs"}
    )


class RetrievalEvaluator(SentenceEvaluator):
    """Retrieval mAP on held-out pairs, for ``SentenceTransformerTrainer(evaluator=...)``.

    ``__call__(model)`` encodes the benchmark of :func:`pairs_benchmark` (queries with the ``query``
    prompt, candidates with ``passage``, when the model has them; nothing cached), scores it with
    :func:`hbkit.retrieval.pools.evaluate_embeddings` and returns ``{"<name>_<setting>_<metric>":
    value}`` for ``setting`` in ``settings`` and ``metric`` in :data:`METRICS` (plus
    ``<name>_multi_rank_distance``), each the macro-average over query languages (over language
    pairs for ``cross``). ``primary_metric`` is ``<name>_multi_map`` (multilingual mAP, the paper's
    headline metric), ``greater_is_better`` is true. The trainer logs them with an ``eval_`` prefix:
    select checkpoints with ``metric_for_best_model=f"eval_{name}_multi_map"``. With ``output_path``
    (the trainer passes ``<output_dir>/eval``), each call appends a row to ``<name>_results.csv``
    (written atomically).
    """

    def __init__(
        self,
        pairs,
        name: str = "val",
        batch_size: int = 64,
        settings: Sequence[str] = SETTINGS,
        max_groups: int | None = None,
        seed: int = 0,
    ):
        super().__init__()
        if not name or any(c in name for c in "/\\ "):
            raise DataError(
                f"name={name!r}: use a short identifier without spaces or slashes (e.g. 'val')"
            )
        unknown = [s for s in settings if s not in SETTINGS]
        if unknown or not settings:
            raise DataError(
                f"settings={list(settings)}: use a non-empty subset of {', '.join(SETTINGS)}"
            )
        if batch_size < 1:
            raise DataError(f"batch_size={batch_size}: must be >= 1")
        bench = pairs_benchmark(pairs, name)
        if max_groups is not None:
            bench = bench.subsample(max_groups, seed=seed)
        self.benchmark, self.name, self.batch_size, self.settings = (
            bench,
            name,
            batch_size,
            tuple(settings),
        )
        self.primary_metric = "multi_map" if "multi" in settings else f"{settings[0]}_map"
        self.greater_is_better = True

    def __call__(
        self, model, output_path: str | None = None, epoch: float = -1, steps: int = -1
    ) -> dict[str, float]:
        b = self.benchmark
        Q = encode(model, b.queries["text"].tolist(), "query", self.batch_size, cache=False)
        C = encode(model, b.candidates["text"].tolist(), "passage", self.batch_size, cache=False)
        macro = evaluate_embeddings(b, Q, C, self.settings, progress=False).macro()
        wanted = set(METRICS) | {"rank_distance"}
        metrics = {
            f"{r.setting}_{r.metric}": float(r.value)
            for r in macro.itertuples()
            if r.metric in wanted and (r.metric != "rank_distance" or r.setting == "multi")
        }
        if not metrics:
            raise DataError(
                f"{self.name}: no setting could be scored (every cell lacked a relevant candidate)"
            )
        log.info(
            "%s at epoch %s step %s: %s",
            self.name,
            epoch,
            steps,
            ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()) if k.endswith("_map")),
        )
        if output_path is not None:
            self._append_csv(Path(output_path), epoch, steps, metrics)
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def _append_csv(self, folder: Path, epoch, steps, metrics: dict[str, float]) -> None:
        path = folder / f"{self.name}_results.csv"
        row = pd.DataFrame([{"epoch": epoch, "steps": steps, **metrics}])
        old = pd.read_csv(path) if path.is_file() else None
        text = (row if old is None else pd.concat([old, row], ignore_index=True)).to_csv(
            index=False
        )
        os.makedirs(folder, exist_ok=True)
        atomic_write_text(path, text)

    def get_config_dict(self) -> dict:
        b = self.benchmark
        return {
            "queries": len(b.queries),
            "candidates": len(b.candidates),
            "languages": b.languages,
            "settings": list(self.settings),
        }

    def __repr__(self) -> str:
        b = self.benchmark
        return (
            f"RetrievalEvaluator({self.name!r}: {len(b.queries)} queries, {len(b.candidates)} "
            f"candidates, {len(np.unique(b.queries['lang']))} languages)"
        )
