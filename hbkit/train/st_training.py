"""What sentence-transformers' trainer needs to train on hbkit batches, in one piece.

hbkit's batch samplers (:mod:`hbkit.train.sampling`) yield dataset rows ``[q0, p0, q1, p1, ...]``,
and only :class:`PairCollator` turns them into (query, passage) pairs. :func:`st_training_kwargs`
returns the three pieces a ``SentenceTransformerTrainer`` needs for that, built to agree with each
other: the batch-sampler factory (one sampler per dataset, with ``num_replicas`` and ``rank`` set
under several processes), the collator, and the prompts of the encoder's ``query``/``passage``
columns, under one seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

# heavy: sentence-transformers
from sentence_transformers.sentence_transformer.data_collator import (
    SentenceTransformerDataCollator,
)

from hbkit.core.vocab import CORPUS_COLUMN
from hbkit.train.sampling import (
    SamplerError,
    SamplerFactory,
    batch_kind,
    batch_name,
    make_sampler,
    split_pairs,
)

PAIR_COLUMNS = ("query", "passage")


@dataclass
class PairCollator(SentenceTransformerDataCollator):
    """sentence-transformers collator for hbkit batches: rows ``[q0, p0, q1, p1, ...]`` become the
    ``query`` (anchor) and ``passage`` (positive) columns, tokenised with the ``query``/``passage``
    prompts. A batch that an hbkit sampler did not draw (an odd number of rows, or a query row and
    passage row of different groups) is refused with :class:`~hbkit.train.sampling.SamplerError`.

    The batch's kind travels with it: ``inputs["hbkit_batch"] = {"kind": "xx"|"xy"|"mixed",
    "lang": ...}``, read off the rows being collated (:func:`~hbkit.train.sampling.batch_kind`),
    which hbkit's trainer records per step (sentence-transformers ignores keys that are not model
    features). ``seen`` lists every batch collated, as ``"xx:<lang>"`` / ``"xy"``."""

    seen: list = field(default_factory=list, repr=False)
    #: what the batch samplers check before they let a trainer use them (without importing this
    #: module)
    reads_pair_rows: ClassVar[bool] = True

    def __call__(self, features: list[dict]) -> dict:
        qs, ps = split_pairs(features)
        out = super().__call__(
            [{"query": q["query"], "passage": p["passage"]} for q, p in zip(qs, ps)]
        )
        if "lang" in qs[0]:
            kind = batch_kind([f["lang"] for f in qs], [f["lang"] for f in ps])
            out["hbkit_batch"] = {
                "kind": kind.split(":")[0],
                "lang": kind.split(":")[1] if ":" in kind else None,
            }
            # a mix: the corpus of the batch (one per batch, else "mixed")
            if CORPUS_COLUMN in qs[0]:
                corpora = {f[CORPUS_COLUMN] for f in features}
                out["hbkit_batch"]["corpus"] = corpora.pop() if len(corpora) == 1 else "mixed"
            self.seen.append(batch_name(out["hbkit_batch"]))
        return out


@dataclass
class STTraining:
    """The pieces of :func:`st_training_kwargs`: ``args`` go to
    ``SentenceTransformerTrainingArguments``, ``trainer`` to ``SentenceTransformerTrainer``."""

    batch_sampler: SamplerFactory
    data_collator: PairCollator
    prompts: dict[str, str] | None
    seed: int

    @property
    def args(self) -> dict[str, Any]:
        """Keyword arguments for ``SentenceTransformerTrainingArguments``: the sampler factory, the
        prompts and the seed (give ``seed`` nowhere else: Python refuses it twice)."""
        return {"batch_sampler": self.batch_sampler, "prompts": self.prompts, "seed": self.seed}

    @property
    def trainer(self) -> dict[str, Any]:
        """Keyword arguments for ``SentenceTransformerTrainer``: the collator."""
        return {"data_collator": self.data_collator}


def _pair_prompts(model, prompts) -> dict[str, str] | None:
    """The prompts of the ``query``/``passage`` columns: the given mapping, else the encoder's own
    (``model.prompts``, e.g. multilingual-e5's ``query: `` / ``passage: ``), else none."""
    if prompts == "model":
        own = getattr(model, "prompts", None) or {}
        prompts = {k: own[k] for k in PAIR_COLUMNS if k in own} or None
    if prompts is not None and (not isinstance(prompts, dict) or set(prompts) - set(PAIR_COLUMNS)):
        raise SamplerError(
            f"prompts={prompts!r}: give a mapping of the columns {PAIR_COLUMNS} to prompt strings, "
            "None for no prompts, or 'model' for the encoder's own"
        )
    return prompts


def st_training_kwargs(
    strategy: str,
    alpha: float = 0.5,
    model=None,
    *,
    seed: int = 0,
    prompts="model",
    **sampler_kw: Any,
) -> STTraining:
    """Everything sentence-transformers' trainer needs to train on hbkit batches, built to agree.

    Args:
        strategy: ``xx`` (X-X-mono), ``xy`` (X-Y) or ``hybrid``.
        alpha: hybrid only: the probability that a batch is X-X-mono (the paper: 0.5).
        model: the ``SentenceTransformer`` to train; its ``preprocess`` tokenises in the collator.
        seed: the seed of the batch draw and of the trainer (both get it, so neither overrides the
            other).
        prompts: ``"model"`` (the encoder's own ``query``/``passage`` prompts, if it has them), a
            mapping ``{"query": ..., "passage": ...}``, or None.
        **sampler_kw: :class:`~hbkit.train.sampling.HybridBatchSampler` options (``alpha_end``,
            ``language_weights``).

    Returns:
        An :class:`STTraining`: ``.args`` for ``SentenceTransformerTrainingArguments``
            (``batch_sampler``,
        ``prompts``, ``seed``) and ``.trainer`` for ``SentenceTransformerTrainer``
            (``data_collator``). The
        training dataset needs hbkit's pair columns ``group``, ``lang``, ``query``, ``passage``,
        ``answer_key`` (e.g. :func:`hbkit.data.benchmarks.parallel_pairs`); the per-device batch
            size is in
        pairs.

    Raises:
        SamplerError: an unknown strategy, α outside [0, 1], prompts for other columns, or no model.

    Examples:
        >>> st = hbkit.st_training_kwargs("hybrid", 0.5, model, seed=1)
        >>> args = SentenceTransformerTrainingArguments(
        ...     "out", per_device_train_batch_size=32, **st.args
        ... )
        >>> trainer = SentenceTransformerTrainer(
        ...     model=model, args=args, train_dataset=pairs,
        ...     loss=MultipleNegativesRankingLoss(model), **st.trainer
        ... )
    """
    if model is None or not callable(getattr(model, "preprocess", None)):
        raise SamplerError(
            "st_training_kwargs needs the SentenceTransformer to train (model=...): its preprocess "
            "tokenises the pairs in the collator"
        )
    pair_prompts = _pair_prompts(model, prompts)
    factory = make_sampler(strategy, alpha, seed=seed, **sampler_kw)
    collator = PairCollator(preprocess_fn=model.preprocess, prompts=pair_prompts or {})
    return STTraining(
        batch_sampler=factory, data_collator=collator, prompts=pair_prompts, seed=seed
    )
