"""Batch policies for parallel (group, language, query, passage) data: X-X-mono, X-Y and hybrid(α).

All three are one class, :class:`HybridBatchSampler`, over one shared draw; ``XXMonoBatchSampler``
is ``alpha=1`` and ``XYBatchSampler`` is ``alpha=0``, so for the same seed they yield exactly the
batches the hybrid yields with that α.

A batch is a list of ``2 * batch_size`` row indices into the pairs dataset, ``[q0, p0, q1,
p1, ...]``: pair i takes the ``query`` of row ``q_i`` and the ``passage`` of row ``p_i``
(same group). Only :class:`~hbkit.train.st_training.PairCollator` (or :func:`text_pairs` for
a plain ``torch.utils.data.DataLoader``) reads such a batch: it turns it into
sentence-transformers' (query, passage) columns. In ``SentenceTransformerTrainer`` use
:func:`hbkit.train.st_training.st_training_kwargs`, which returns the three pieces together
(the batch-sampler *factory* :func:`make_sampler`, the collator and the prompts). Misuse is
refused, never trained on: a sampler built by a trainer whose ``data_collator`` is not a
:class:`~hbkit.train.st_training.PairCollator` raises :class:`SamplerError` (under the
default collator the rows would never be paired), so does a sampler *instance* passed as
``batch_sampler=`` (the trainer builds one per dataset: pass the factory), and so does the
class built in a process group of several processes without ``num_replicas`` (each rank would
draw its own batch kinds).

Guarantees of every batch (tested with hypothesis in tests/test_sampling.py):

* X-X-mono batch: every query and every passage is in one language, drawn per batch (uniformly, or
  in proportion to its number of groups with ``language_weights="proportional"``).
* X-Y batch: in every pair the query's language differs from the passage's; both are drawn per pair
  among the languages the group has.
* No false negatives from translations: no two pairs of a batch share an answer identity, so no
  batch holds a translation of a positive (or the positive itself) as a negative, also when several
  questions share one answer sentence. The identity joins groups that share an ``answer_key`` (the
  corpus's language-independent id of the answer passage) or a passage text in some language,
  transitively. No group appears twice, and no passage text appears twice (by a 64-bit hash of the
  text). A pair that would break this is deferred to a later batch, never dropped.
* Each batch is X-X-mono with probability α (constant, or linear from ``alpha`` to ``alpha_end``
  over the epoch), else X-Y.
* Deterministic for a seed; :meth:`HybridBatchSampler.set_epoch` reshuffles. An epoch is
  ``n_batches`` = ``n_groups // (batch_size * num_replicas)`` global batches; within one language
  queue every group is used once before any is used again. The ``batch_size`` argument is pairs per
  rank (sentence-transformers' ``per_device_train_batch_size``), also readable as
  ``pairs_per_batch``. The attribute ``batch_size`` is the number of dataset rows in a yielded
  batch, ``2 * pairs_per_batch`` (also ``rows_per_batch``), because accelerate's
  ``BatchSamplerShard`` compares it with each batch's length and drops every batch that differs.
* ``len(sampler)`` is the number of batches :meth:`HybridBatchSampler.__iter__` yields in an epoch,
  as torch's DataLoader, accelerate and sentence-transformers expect: ``n_batches`` for one rank
  (``rank`` an int), and ``num_replicas * n_batches`` with ``rank=None`` (the slices of every global
  batch in turn).
* Distributed: with ``num_replicas=N`` every rank computes the same global batch of ``N *
  batch_size`` pairs (so all agree on its type) and yields the disjoint slice ``rank``. Under the
  HF/sentence-transformers trainer, accelerate's ``BatchSamplerShard`` hands yielded batch ``i`` to
  process ``i % N``, so :class:`SamplerFactory` builds the sampler with ``rank=None``: the N slices
  are yielded in turn, process r receives slice r of every global batch, and each process has
  ``n_batches`` steps per epoch.
* What a batch is travels with the batch: :class:`~hbkit.train.st_training.PairCollator` reads the
  kind and language off the rows it collates (:func:`batch_kind`, exact given the guarantees above)
  and passes them on as ``inputs["hbkit_batch"]``; hbkit's trainer records that. Nothing recomputes
  a batch's kind from step numbers, so prefetching, epoch boundaries, resumes and N processes cannot
  shift it.
* Memory O(groups x languages): a (group, query language, passage language) triple is drawn lazily,
  never materialised.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from hbkit.core.groups import components
from hbkit.core.vocab import CORPUS_COLUMN, STRATEGIES

log = logging.getLogger(__name__)


@dataclass
class _GroupQueue:
    """The groups a batch kind draws from: a seeded permutation read in order (re-shuffled when used
    up), after the groups an earlier batch deferred."""

    order: np.ndarray
    pos: int = 0
    deferred: list = field(default_factory=list)

    def next(self, rng: np.random.Generator) -> int:
        if self.deferred:
            return self.deferred.pop(0)
        if self.pos >= len(self.order):
            self.order, self.pos = rng.permutation(self.order), 0
        self.pos += 1
        return int(self.order[self.pos - 1])


class SamplerError(ValueError):
    """Bad sampler arguments or data that cannot give a valid batch."""


def _column_codes(dataset, name: str) -> tuple[np.ndarray, list]:
    """Integer codes of a dataset column, read from Arrow without building a Python list."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = (
        dataset.with_format("arrow")[name]
        if hasattr(dataset, "with_format")
        else pa.array(dataset[name])
    )
    enc = pc.dictionary_encode(col)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), enc.dictionary.to_pylist()


def _text_hashes(dataset, name: str, chunk: int = 100_000) -> np.ndarray:
    import pandas as pd

    out = np.empty(len(dataset), dtype=np.uint64)
    column = dataset.select_columns([name])  # read this column only (not the contexts beside it)
    for s in range(0, len(dataset), chunk):
        texts = np.asarray(column[s : s + chunk][name], dtype=object)
        out[s : s + chunk] = pd.util.hash_array(texts, categorize=False)
    return out


def _answer_identity(gcode: np.ndarray, kcode: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Per row, the component of the graph that joins every group to its rows' answer keys and
    passage texts: two rows get one identity when their groups share an answer key, or a passage
    text (the same answer in one language), directly or through other groups. O(rows) with scipy's
    connected components."""
    _, hcode = np.unique(hashes, return_inverse=True)
    G, K = int(gcode.max()) + 1, int(kcode.max()) + 1
    label = components(
        np.concatenate([gcode, gcode]),
        np.concatenate([G + kcode, G + K + hcode]),
        G + K + int(hcode.max()) + 1,
    )
    return label[gcode].astype(np.int64)


@dataclass
class BatchInfo:
    """What one global batch is: ``kind`` ("xx" or "xy"), for X-X-mono its ``lang``, and in a mix of
    corpora (:class:`MultiCorpusBatchSampler`) the ``corpus`` it comes from."""

    kind: str
    lang: str | None
    corpus: str | None = None


class _SliceYielder:
    """What torch, accelerate and sentence-transformers call on a batch sampler, over
    ``global_batches``: its length, ``set_epoch`` and the rows of this rank's slice of every global
    batch."""

    pairs_per_batch: int
    num_replicas: int
    rank: int | None
    n_batches: int
    epoch: int

    def __len__(self) -> int:
        """Batches yielded per epoch: ``n_batches`` per rank, ``num_replicas * n_batches`` with
        ``rank=None``."""
        return self.n_batches * (self.num_replicas if self.rank is None else 1)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @property
    def rows_per_batch(self) -> int:
        """Dataset rows in one yielded batch: two per pair (``[q0, p0, q1, p1, ...]``)."""
        return 2 * self.pairs_per_batch

    def __call__(self, *_: Any, **__: Any):
        """Refuse being used as ``batch_sampler=`` of sentence-transformers' arguments (which calls
        it)."""
        raise SamplerError(
            f"batch_sampler= got a {type(self).__name__} instance, but sentence-transformers "
            "builds a batch sampler per dataset (train and eval): pass the factory, "
            "hbkit.make_sampler(strategy, alpha), or take all the pieces from "
            "hbkit.st_training_kwargs(strategy, alpha, model)"
        )

    def global_batches(self, epoch: int | None = None) -> Iterator[tuple[BatchInfo, np.ndarray]]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[list[int]]:
        """Rows ``[q0, p0, q1, p1, ...]`` of this rank's slice of every global batch; with
        ``rank=None``, the ``num_replicas`` slices of each global batch one after another (for
        accelerate's ``BatchSamplerShard``, which hands batch ``i`` to process ``i %
        num_replicas``)."""
        B = self.pairs_per_batch
        ranks = range(self.num_replicas) if self.rank is None else (self.rank,)
        for _, pairs in self.global_batches():
            for r in ranks:
                yield pairs[r * B : (r + 1) * B].reshape(-1).tolist()


class HybridBatchSampler(_SliceYielder):
    """Hybrid(α) batches over parallel pairs; see the module docstring for what every batch
    guarantees.

    ``dataset`` needs the columns ``group``, ``lang``, ``passage`` and ``answer_key`` (every hbkit
    training corpus has them, e.g. ``hbkit.data.benchmarks.parallel_pairs``; for your own pairs
    where each group has its own answer, ``answer_key`` can be the group id).
    ``generator``/``valid_label_columns``/``drop_last`` are accepted for sentence-transformers'
    ``batch_sampler`` interface; the draw uses its own seeded generator and always drops the
    remainder. ``batch_size`` is pairs per batch and rank (``pairs_per_batch``); the ``batch_size``
    *attribute* is rows per yielded batch (``rows_per_batch`` = 2 x pairs), see the module
    docstring. ``num_replicas`` defaults to 1 in a single process; in a process group of several it
    must be given (with ``rank``), or use :func:`make_sampler`, whose factory sets both for the
    trainer.
    """

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(alpha={self.alpha}, {self.pairs_per_batch} pairs = "
            f"{self.batch_size} rows per batch, {self.n_batches} batches per epoch, "
            f"seed={self.seed}, num_replicas={self.num_replicas}, rank={self.rank})"
        )

    def __init__(
        self,
        dataset,
        batch_size: int,
        drop_last: bool = True,
        valid_label_columns=None,
        generator=None,
        seed: int = 0,
        alpha: float = 0.5,
        alpha_end: float | None = None,
        language_weights: str = "uniform",
        num_replicas: int | None = None,
        rank: int | None = 0,
        **_: Any,
    ):
        check_alpha(alpha, alpha_end, language_weights)
        _check_calling_trainer()
        num_replicas = _replicas(num_replicas, type(self).__name__)
        if batch_size < 1 or num_replicas < 1 or not (rank is None or 0 <= rank < num_replicas):
            raise SamplerError(
                f"batch_size={batch_size}, num_replicas={num_replicas}, rank={rank} are invalid"
            )
        for col in ("group", "lang", "passage", "answer_key"):
            if col not in dataset.column_names:
                hint = (
                    (
                        " (the language-independent id of each row's answer passage, shared by its "
                        "translations; use the group id if every group has its own answer)"
                    )
                    if col == "answer_key"
                    else ""
                )
                raise SamplerError(
                    f"the dataset has no column {col!r}{hint} (columns: {dataset.column_names}); "
                    "build it with hbkit.data.benchmarks.parallel_pairs or "
                    "hbkit.data.corpora.load_training_corpus"
                )
        self.pairs_per_batch, self.seed, self.alpha, self.alpha_end = (
            batch_size,
            seed,
            alpha,
            alpha_end,
        )
        # rows per yielded batch: accelerate drops batches of another length
        self.batch_size = 2 * batch_size
        self.num_replicas, self.rank, self.epoch = num_replicas, rank, 0
        self.language_weights = language_weights
        gcode, self.group_names = _column_codes(dataset, "group")
        lcode, self.languages = _column_codes(dataset, "lang")
        G, L = len(self.group_names), len(self.languages)
        # rows[g, l] = dataset row of group g in language l, -1 if absent: the only O(G x L)
        # structure
        self.rows = np.full((G, L), -1, dtype=np.int64 if len(dataset) >= 2**31 else np.int32)
        dup = np.zeros((G, L), dtype=np.int8)
        np.add.at(dup, (gcode, lcode), 1)
        if (dup > 1).any():
            g, l = map(int, np.argwhere(dup > 1)[0])
            raise SamplerError(
                f"group {self.group_names[g]!r} has {dup[g, l]} rows in language "
                f"{self.languages[l]!r}; each (group, lang) must be one row"
            )
        self.rows[gcode, lcode] = np.arange(len(dataset))
        self.hash = _text_hashes(dataset, "passage")
        self.answer = _answer_identity(gcode, _column_codes(dataset, "answer_key")[0], self.hash)
        has = self.rows >= 0
        self.global_batch = batch_size * num_replicas
        self.lang_groups = [np.flatnonzero(has[:, l]) for l in range(L)]
        self.multi_groups = np.flatnonzero(has.sum(1) >= 2)
        B = self.global_batch
        self.n_batches = G // B
        if self.n_batches == 0:
            raise SamplerError(
                f"batch size {B} is larger than the number of groups ({G}); lower batch_size"
            )
        self.mono_langs = [l for l in range(L) if len(self.lang_groups[l]) >= B]
        self.excluded_languages = [
            self.languages[l] for l in range(L) if len(self.lang_groups[l]) < B
        ]
        if self.excluded_languages and self._needs_mono():
            log.warning(
                "languages with fewer than %d groups are left out of X-X-mono batches: %s",
                B,
                ", ".join(self.excluded_languages),
            )
        if self._needs_mono() and not self.mono_langs:
            raise SamplerError(
                f"no language has {B} groups for an X-X-mono batch (largest: "
                f"{max(len(x) for x in self.lang_groups)}); lower batch_size"
            )
        if self._needs_xy() and len(self.multi_groups) == 0:
            raise SamplerError(
                f"no group has pairs in two languages ({G} groups, each in one language), so no "
                "X-Y batch can be made: the same question (group) must appear in several "
                "languages; check the group column, or use strategy xx"
            )
        if self._needs_xy() and len(self.multi_groups) < B:
            raise SamplerError(
                f"batch size {B} is larger than the {len(self.multi_groups)} groups with at least "
                "two languages; an X-Y batch needs distinct groups: lower batch_size"
            )
        w = np.array([len(self.lang_groups[l]) for l in self.mono_langs], dtype=float)
        self.lang_p = (
            w / w.sum()
            if language_weights == "proportional"
            else np.full(len(w), 1 / max(len(w), 1))
        )

    def _needs_mono(self) -> bool:
        return self.alpha > 0 or (self.alpha_end or 0) > 0

    def _needs_xy(self) -> bool:
        return self.alpha < 1 or (self.alpha_end is not None and self.alpha_end < 1)

    def alpha_at(self, b: int) -> float:
        """α of batch ``b`` of the epoch (constant, or linear from ``alpha`` to ``alpha_end``)."""
        if self.alpha_end is None or self.n_batches == 1:
            return self.alpha
        return self.alpha + (self.alpha_end - self.alpha) * b / (self.n_batches - 1)

    def plan(self, epoch: int | None = None) -> list[BatchInfo]:
        """The type (and X-X-mono language) of every global batch of an epoch, without drawing the
        pairs."""
        rng = np.random.default_rng([self.seed, self.epoch if epoch is None else epoch, 0])
        u = rng.random(self.n_batches)
        langs = (
            rng.choice(len(self.mono_langs), size=self.n_batches, p=self.lang_p)
            if self.mono_langs
            else None
        )
        out = []
        for b in range(self.n_batches):
            a = self.alpha_at(b)
            mono = a >= 1.0 or (a > 0.0 and u[b] < a)
            out.append(
                BatchInfo("xx", self.languages[self.mono_langs[langs[b]]])
                if mono
                else BatchInfo("xy", None)
            )
        return out

    def global_batches(self, epoch: int | None = None) -> Iterator[tuple[BatchInfo, np.ndarray]]:
        """Yield ``(info, pairs)`` for every global batch; ``pairs`` is (global_batch, 2) of (query
        row, passage row)."""
        epoch = self.epoch if epoch is None else epoch
        rng = np.random.default_rng([self.seed, epoch, 1])
        queues: dict[Any, _GroupQueue] = {}

        def queue(key, pool) -> _GroupQueue:
            if key not in queues:
                queues[key] = _GroupQueue(rng.permutation(pool))
            return queues[key]

        B = self.global_batch
        for info in self.plan(epoch):
            if info.kind == "xx":
                l = self.languages.index(info.lang)
                q = queue(("xx", l), self.lang_groups[l])
            else:
                q = queue("xy", self.multi_groups)
            batch, seen_g, seen_h, seen_a, deferred = [], set(), set(), set(), []
            while len(batch) < B:
                g = q.next(rng)
                if g in seen_g:
                    deferred.append(g)
                    continue
                if info.kind == "xx":
                    qr = pr = int(self.rows[g, l])
                else:
                    avail = np.flatnonzero(self.rows[g] >= 0)
                    ql, pl = rng.choice(avail, size=2, replace=False)
                    qr, pr = int(self.rows[g, ql]), int(self.rows[g, pl])
                h, key = int(self.hash[pr]), int(self.answer[pr])
                # its answer (in some language) is already in the batch:
                if h in seen_h or key in seen_a:
                    deferred.append(g)  # keep the group for a later batch
                    if len(deferred) > 4 * len(q.order) + B:
                        raise SamplerError(
                            "cannot fill a batch without two pairs sharing an answer; lower "
                            "batch_size"
                        )
                    continue
                seen_g.add(g)
                seen_h.add(h)
                seen_a.add(key)
                batch.append((qr, pr))
            q.deferred = deferred + q.deferred
            yield info, np.asarray(batch, dtype=np.int64)


class XXMonoBatchSampler(HybridBatchSampler):
    """X-X-mono: every batch in one language (``HybridBatchSampler`` with ``alpha=1``)."""

    def __init__(self, dataset, batch_size: int, **kw):
        kw.update(alpha=1.0, alpha_end=None)
        super().__init__(dataset, batch_size, **kw)


class XYBatchSampler(HybridBatchSampler):
    """X-Y: every pair crosses languages (``HybridBatchSampler`` with ``alpha=0``)."""

    def __init__(self, dataset, batch_size: int, **kw):
        kw.update(alpha=0.0, alpha_end=None)
        super().__init__(dataset, batch_size, **kw)


class MultiCorpusBatchSampler(_SliceYielder):
    """Batches over a mix of training corpora (the dataset's ``corpus`` column): every global batch
    comes from one corpus, chosen with probability proportional to its number of rows (as
    FlagEmbedding's ``same_dataset_within_batch``), and inside that corpus the strategy's sampler
    (``sampler_cls``, a :class:`HybridBatchSampler` with its α) makes the batch, so every guarantee
    of the module docstring holds within each batch: one corpus per batch means no translated
    positive of another corpus can be a negative either. :class:`BatchInfo` names the corpus. An
    epoch has as many global batches as the corpora's own epochs together; a corpus drawn more often
    than its size gives starts its next epoch of groups (reshuffled), and the draw depends on (seed,
    epoch) only, so resumes and N processes see the same batches."""

    def __init__(
        self,
        dataset,
        batch_size: int,
        sampler_cls: type | None = None,
        corpus_column: str = CORPUS_COLUMN,
        drop_last: bool = True,
        valid_label_columns=None,
        generator=None,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = 0,
        **kw: Any,
    ):
        sampler_cls = sampler_cls or HybridBatchSampler
        _check_calling_trainer()
        num_replicas = _replicas(num_replicas, type(self).__name__)
        if corpus_column not in dataset.column_names:
            raise SamplerError(
                f"the dataset has no column {corpus_column!r} naming each row's corpus (columns: "
                f"{dataset.column_names}); build the mix with "
                "hbkit.data.corpora.load_training_corpus"
            )
        if kw.get("alpha_end") is not None:
            raise SamplerError(
                "alpha_end (a schedule of α over the epoch) is not defined for a mix of corpora, "
                "whose batches each follow their corpus's own epoch; use a constant alpha"
            )
        codes, self.corpora = _column_codes(dataset, corpus_column)
        self.index = [np.flatnonzero(codes == c) for c in range(len(self.corpora))]
        self.samplers, self.mono_only = [], []
        for c, name in enumerate(self.corpora):
            sub_seed = int(np.random.SeedSequence([seed, c]).generate_state(1)[0])
            part = dataset.select(self.index[c])
            try:
                self.samplers.append(
                    sampler_cls(
                        part, batch_size, seed=sub_seed, num_replicas=num_replicas, rank=rank, **kw
                    )
                )
            except SamplerError as e:
                # a corpus in one language (Mr. TyDi or MFAQ in English, as in the paper's mix)
                # cannot give an X-Y batch: its batches are X-X-mono whatever the strategy, and the
                # log and each BatchInfo say so
                try:
                    mono = XXMonoBatchSampler(
                        part,
                        batch_size,
                        seed=sub_seed,
                        num_replicas=num_replicas,
                        rank=rank,
                        **{k: v for k, v in kw.items() if k not in ("alpha", "alpha_end")},
                    )
                except SamplerError:
                    raise SamplerError(
                        f"corpus {name!r} of the mix ({len(self.index[c])} rows): {e}"
                    ) from None
                log.warning(
                    "corpus %r of the mix has too few groups in two languages for X-Y batches "
                    "(%s): its batches are X-X-mono",
                    name,
                    e,
                )
                self.samplers.append(mono)
                self.mono_only.append(name)
        first = self.samplers[0]
        self.pairs_per_batch, self.batch_size, self.seed = (
            first.pairs_per_batch,
            first.batch_size,
            seed,
        )
        self.num_replicas, self.rank, self.epoch, self.global_batch = (
            num_replicas,
            rank,
            0,
            first.global_batch,
        )
        sizes = np.array([len(i) for i in self.index], dtype=float)
        self.p = sizes / sizes.sum()
        self.n_batches = sum(s.n_batches for s in self.samplers)

    def choices(self, epoch: int | None = None) -> np.ndarray:
        """The corpus (index into ``self.corpora``) of every global batch of an epoch."""
        rng = np.random.default_rng([self.seed, self.epoch if epoch is None else epoch, 2])
        return rng.choice(len(self.corpora), size=self.n_batches, p=self.p)

    def _streams(self, epoch: int, what):
        """Per corpus, an endless stream of ``what(sampler, inner_epoch)`` items over its epochs
        ``epoch * 10**6 + k``, k = 0, 1, ..."""

        def stream(c):
            k = 0
            while True:
                yield from what(self.samplers[c], epoch * 10**6 + k)
                k += 1

        return [stream(c) for c in range(len(self.corpora))]

    def plan(self, epoch: int | None = None) -> list[BatchInfo]:
        """The corpus, type and X-X-mono language of every global batch of an epoch, without drawing
        the pairs."""
        epoch = self.epoch if epoch is None else epoch
        streams = self._streams(epoch, lambda s, e: s.plan(e))
        return [
            BatchInfo(i.kind, i.lang, self.corpora[c])
            for c in self.choices(epoch)
            for i in (next(streams[c]),)
        ]

    def global_batches(self, epoch: int | None = None) -> Iterator[tuple[BatchInfo, np.ndarray]]:
        """Yield ``(info, pairs)`` for every global batch; ``pairs`` holds rows of the whole (mixed)
        dataset."""
        epoch = self.epoch if epoch is None else epoch
        streams = self._streams(epoch, lambda s, e: s.global_batches(e))
        for c in self.choices(epoch):
            info, pairs = next(streams[c])
            yield BatchInfo(info.kind, info.lang, self.corpora[c]), self.index[c][pairs]


def is_mix(dataset) -> bool:
    """Whether ``dataset`` holds more than one corpus (its ``corpus`` column has two or more
    values)."""
    if CORPUS_COLUMN not in getattr(dataset, "column_names", []):
        return False
    return len(_column_codes(dataset, CORPUS_COLUMN)[1]) > 1


class SamplerFactory:
    """A picklable factory for ``SentenceTransformerTrainingArguments(batch_sampler=...)``: called
    with ``(dataset, batch_size=..., drop_last=..., valid_label_columns=..., generator=...,
    seed=...)`` it returns the strategy's sampler. Arguments are checked here, before any work.
    ``last`` is the most recent sampler built (for inspection only: logging reads each batch's own
    kind, see the module docstring)."""

    def __init__(self, strategy: str, alpha: float = 0.5, **kw):
        if strategy not in STRATEGIES:
            raise SamplerError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
        check_alpha(alpha, kw.get("alpha_end"), kw.get("language_weights", "uniform"))
        self.strategy, self.alpha, self.kw, self.last = strategy, alpha, kw, None

    def __call__(self, dataset, **kw) -> HybridBatchSampler | MultiCorpusBatchSampler:
        cls = {"xx": XXMonoBatchSampler, "xy": XYBatchSampler, "hybrid": HybridBatchSampler}[
            self.strategy
        ]
        extra = {"alpha": self.alpha} if self.strategy == "hybrid" else {}
        world = _world_size()
        if (
            "num_replicas" not in self.kw
        ):  # the trainer's layout: every rank builds the same global batches
            extra.update(
                {"num_replicas": world, "rank": None} if world > 1 else {"num_replicas": 1}
            )
        if "seed" in self.kw:  # the seed given to make_sampler wins over the trainer's
            trainer_seed = kw.pop("seed", self.kw["seed"])
            if trainer_seed != self.kw["seed"]:
                log.info(
                    "the batch sampler uses seed %s, given to make_sampler, not the trainer's "
                    "seed %s",
                    self.kw["seed"],
                    trainer_seed,
                )
        kw = {**self.kw, **extra, **kw}
        # several corpora: one corpus per batch, the strategy's sampler inside it
        if is_mix(dataset):
            self.last = MultiCorpusBatchSampler(dataset, sampler_cls=cls, **kw)
        else:
            self.last = cls(dataset, **kw)
        return self.last

    def __getstate__(self):
        return {**self.__dict__, "last": None}


def check_alpha(
    alpha: float, alpha_end: float | None = None, language_weights: str = "uniform"
) -> None:
    """Raise :class:`SamplerError` unless α (and ``alpha_end``) lie in [0, 1] and the language
    weighting is known."""
    for name, v in (("alpha", alpha), ("alpha_end", alpha_end)):
        if v is not None and not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
            raise SamplerError(f"{name}={v!r}: the share of X-X-mono batches must lie in [0, 1]")
    if language_weights not in ("uniform", "proportional"):
        raise SamplerError(
            f"language_weights={language_weights!r}: use 'uniform' or 'proportional'"
        )


def _world_size() -> int:
    import torch.distributed as dist  # heavy: torch

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _replicas(num_replicas: int | None, name: str) -> int:
    """``num_replicas``, or 1 when not given in a single process; refused unset in a group of
    several."""
    if num_replicas is not None:
        return num_replicas
    world = _world_size()
    if world > 1:
        raise SamplerError(
            f"{name} built in a group of {world} processes without num_replicas: each process "
            "would draw its own batches, and accelerate would put an X-X-mono and an X-Y slice in "
            "one step. Give the trainer hbkit.make_sampler(strategy, alpha) (it sets num_replicas "
            f"and rank), or pass num_replicas={world} and this process's rank"
        )
    return 1


def _calling_trainer(depth: int = 10):
    """The trainer whose ``get_batch_sampler`` is building this sampler (sentence-transformers calls
    the ``batch_sampler`` argument from there), or None when the sampler is built another way."""
    f = sys._getframe(2)
    while f is not None and depth > 0:
        owner = f.f_locals.get("self")
        if f.f_code.co_name == "get_batch_sampler" and hasattr(owner, "data_collator"):
            return owner
        f, depth = f.f_back, depth - 1
    return None


def _check_calling_trainer() -> None:
    """Refuse a sampler that a trainer builds for a collator that does not read pair rows (one whose
    class says ``reads_pair_rows = True``, as :class:`~hbkit.train.st_training.PairCollator`
    does)."""
    trainer = _calling_trainer()
    if trainer is not None and not getattr(trainer.data_collator, "reads_pair_rows", False):
        raise SamplerError(
            f"hbkit's batch samplers yield rows [q0, p0, q1, p1, ...] that only hbkit.PairCollator "
            f"pairs, but the trainer's data_collator is {type(trainer.data_collator).__name__}: "
            "the rows "
            "would never be paired (and an X-X-mono batch would hold every row twice). Pass "
            "data_collator=hbkit.PairCollator(preprocess_fn=model.preprocess, prompts=...) to the "
            "trainer, or take every piece from hbkit.st_training_kwargs(strategy, alpha, model)"
        )


def make_sampler(strategy: str, alpha: float = 0.5, **kw) -> SamplerFactory:
    """The batch-sampler factory of a strategy, for sentence-transformers' trainer arguments.

    Args:
        strategy: ``xx`` (X-X-mono), ``xy`` (X-Y) or ``hybrid``.
        alpha: hybrid only: the probability that a batch is X-X-mono (the paper: 0.5).
        **kw: :class:`HybridBatchSampler` options (``alpha_end``, ``language_weights``, ``seed``). A
            ``seed`` given here wins over the trainer's ``seed`` argument (which
            sentence-transformers passes on).

    Returns:
        A callable ``(dataset, batch_size, ...) -> HybridBatchSampler`` as ``batch_sampler`` expects
            (the
        trainer builds one sampler per dataset, so pass this factory, not a sampler). The trainer
            must also get
        :class:`~hbkit.train.st_training.PairCollator` as ``data_collator``, or the sampler refuses:
            both come from
        :func:`hbkit.train.st_training.st_training_kwargs`.

    Examples:
        >>> sampler = make_sampler("hybrid", alpha=0.5)
        >>> args = SentenceTransformerTrainingArguments("out", batch_sampler=sampler)
    """
    return SamplerFactory(strategy, alpha, **kw)


def split_pairs(features: list[dict]) -> tuple[list[dict], list[dict]]:
    """Rows ``[q0, p0, q1, p1, ...]`` -> (query rows, passage rows)."""
    if len(features) % 2:
        raise SamplerError(
            f"a pair batch must hold an even number of rows ([q0, p0, q1, p1, ...]), got "
            f"{len(features)}: was it drawn by an hbkit batch sampler (hbkit.make_sampler)?"
        )
    qs, ps = features[0::2], features[1::2]
    if "group" in features[0]:
        bad = sum(q["group"] != p["group"] for q, p in zip(qs, ps))
        if bad:
            raise SamplerError(
                f"{bad} of the {len(qs)} (query, passage) row pairs of this batch are of different "
                "groups: the batch was not drawn by an hbkit batch sampler. Give the trainer "
                "batch_sampler=hbkit.make_sampler(strategy, alpha) with this collator"
            )
    return qs, ps


def batch_kind(query_langs: list[str], passage_langs: list[str]) -> str:
    """``"xx:<lang>"`` if every query and passage is in one language, ``"xy"`` if every pair crosses
    languages, else ``"mixed"`` (which no hbkit sampler produces)."""
    langs = set(query_langs) | set(passage_langs)
    if len(langs) == 1:
        return f"xx:{langs.pop()}"
    if all(q != p for q, p in zip(query_langs, passage_langs)):
        return "xy"
    return "mixed"


def batch_name(info: dict) -> str:
    """A batch's name from its ``hbkit_batch`` record (``{"kind", "lang"[, "corpus"]}``, which the
    collator passes on with it): ``"xx:<lang>"``, ``"xy"`` or ``"mixed"``, then ``"@<corpus>"`` in
    a mix. The names of ``PairCollator.seen`` and of the trainer's own list of the batches that
    reached the model."""
    name = info["kind"] + (f":{info['lang']}" if info.get("lang") else "")
    return name + (f"@{info['corpus']}" if "corpus" in info else "")


def describe_batch(
    sampler: HybridBatchSampler, dataset, epoch: int = 0, index: int = 0, n: int | None = None
):
    """One global batch as a DataFrame (query language, query, passage language, passage) plus its
    kind.

    Args:
        sampler: a batch sampler (:class:`HybridBatchSampler` or one of its fixed-α classes).
        dataset: the pairs it was built on.
        epoch: the epoch to draw from.
        index: which global batch of that epoch.
        n: show the first ``n`` pairs only (None: all).

    Returns:
        A DataFrame (``query lang``, ``query``, ``passage lang``, ``passage``), one row per pair;
        ``attrs["kind"]`` is ``"xx (<lang>)"`` or ``"xy"``.

    Examples:
        >>> b = describe_batch(HybridBatchSampler(pairs, 8, seed=0), pairs, n=5)  # doctest: +SKIP
        >>> b.attrs["kind"]  # doctest: +SKIP
    """
    import itertools

    import pandas as pd

    info, pairs = next(itertools.islice(sampler.global_batches(epoch), index, None))
    pairs = pairs[:n] if n else pairs
    rows = [
        (
            dataset[int(q)]["lang"],
            dataset[int(q)]["query"],
            dataset[int(p)]["lang"],
            dataset[int(p)]["passage"],
        )
        for q, p in pairs
    ]
    df = pd.DataFrame(rows, columns=["query lang", "query", "passage lang", "passage"])
    df.attrs["kind"] = info.kind if info.lang is None else f"{info.kind} ({info.lang})"
    return df


def text_pairs(features: list[dict]) -> list[tuple[str, str]]:
    """Collate function for a plain DataLoader over a sampler's batches: the ``(query, passage)``
    pairs of one batch.

    Args:
        features: the dataset rows of one batch as a sampler yields them, ``[q0, p0, q1, p1, ...]``:
            pair i's query is read from row ``q_i`` and its passage from row ``p_i`` (in an X-Y
            batch another language's row of the same group).

    Returns:
        ``[(query, passage), ...]``, one tuple per pair.

    Examples:
        >>> sampler = HybridBatchSampler(pairs, 32)
        >>> loader = DataLoader(pairs, batch_sampler=sampler, collate_fn=text_pairs)
    """
    qs, ps = split_pairs(features)
    return [(q["query"], p["passage"]) for q, p in zip(qs, ps)]
