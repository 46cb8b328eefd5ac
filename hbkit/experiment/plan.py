"""The plan of runs (strategy, α, seed) and the rules for reusing a run folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hbkit.core.digests import carry_mapped, content_key
from hbkit.core.groups import sample_groups
from hbkit.core.vocab import STRATEGY_ALPHA, with_fix
from hbkit.data.corpus_benchmarks import corpus_benchmark_names
from hbkit.data.registry import check_benchmark_names
from hbkit.experiment.grid import LOCKS
from hbkit.experiment.run_files import read_run_json

BENCHMARKS = (
    "xquad-r-eval",
    "mlqa-r",
    "tydiqa",
)  # the default pool benchmarks (profile key ``benchmarks``)


@dataclass(frozen=True)
class Run:
    """One model of the plan. ``name`` is its display name (``base``, ``xx``, ``xy``, ``hybrid``,
    ``hybrid-a0.25``); ``seed`` is None for the base model."""

    name: str
    strategy: str | None
    alpha: float | None
    seed: int | None

    @property
    def id(self) -> str:
        return self.name if self.seed is None else f"{self.name}-s{self.seed}"


def fixed_run(run: Run, fix: str) -> Run:
    """``run`` with the training-free ``fix`` applied at evaluation
    (:mod:`hbkit.retrieval.posthoc`): the same trained model (strategy, α, seed), named
    ``<name>+<fix>`` (``hybrid+shift-s0``); it costs no training."""
    return Run(with_fix(run.name, fix), run.strategy, run.alpha, run.seed)


def umap_bench(cfg: dict) -> str:
    """The parallel benchmark whose questions the UMAP pictures show (XQuAD-R: 11-way parallel)."""
    return next(
        (b for b in ("xquad-r-eval", "xquad-r", "mlqa-r") if b in cfg["benchmarks"]),
        cfg["benchmarks"][0],
    )


def plan(cfg: dict) -> list[Run]:
    """The base model, then every (strategy, α, seed): xx, xy and hybrid (α = 0.5) plus
    ``hybrid-a<α>`` for each extra α, once per training seed."""
    runs = [Run("base", None, None, None)]
    for seed in cfg["seeds"]:
        runs += [Run(s, s, STRATEGY_ALPHA[s], seed) for s in cfg["strategies"]]
        runs += [
            Run(f"hybrid-a{a:g}", "hybrid", float(a), seed)
            for a in cfg.get("alphas") or []
            if a != 0.5
        ]
    return runs


def first_seed_ids(runs: list[Run]) -> set[str]:
    """The run of each model whose UMAP embeddings the report shows: its first seed (and the base
    model)."""
    first: dict[str, str] = {}
    for run in runs:
        first.setdefault(run.name, run.id)
    return set(first.values())


def benchmark_names(cfg: dict) -> list[str]:
    """Every benchmark a run of ``cfg`` scores: its pool benchmarks, then each corpus benchmark's
    languages."""
    specs = check_benchmark_names(cfg["corpus_benchmarks"]) if cfg.get("corpus_benchmarks") else []
    return check_benchmark_names(cfg["benchmarks"]) + [
        n for spec in specs for n in corpus_benchmark_names(spec)
    ]


def subsample_pairs(pairs, n_groups: int | None, seed: int):
    if not n_groups:
        return pairs
    keep = sample_groups(pairs["group"], n_groups, seed)
    return carry_mapped(pairs, pairs.filter(lambda r: r["group"] in keep))


def bench_fingerprint(b) -> str:
    """A content hash of a benchmark as scored: queries, candidates and relevance."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for df in (b.queries[["id", "lang", "text", "group"]], b.candidates[["id", "lang", "text"]]):
        h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    h.update(json.dumps(b.relevance, sort_keys=True).encode())
    return h.hexdigest()


#: profile keys that change a trained model or a per-query result; the others (strategies, alphas,
#: seeds, umap_groups, permutations, delta) only add runs or redo cheap steps, so a folder stays
#: reusable
RESULT_KEYS = (
    "model",
    "steps",
    "batch_size",
    "lr",
    "freeze_word_embeddings",
    "train_groups",
    "train_languages",
    "eval_groups",
    "eval_seed",
    "data",
    "corpus",
    "benchmarks",
    "corpus_benchmarks",
    "val_groups",
    "eval_steps",
    "eval_metric",
    "early_stopping_patience",
    "weight_decay",
    "prompts",
    "val_corpus",
)


#: what a folder written before a key existed was made with
LEGACY = {
    "corpus": "xquad-train",
    "benchmarks": list(BENCHMARKS),
    "corpus_benchmarks": [],
    "val_groups": 0,
    "eval_steps": 20,
    "eval_metric": "loss",
    "early_stopping_patience": 0,
    "weight_decay": 0.01,
    "prompts": None,
    "val_corpus": "held-out",
}


#: keys that may grow in a reused folder: a benchmark added later (say MIRACL, once downloaded) is
#: evaluated for every model already there; one removed or changed is refused
ADDITIVE_KEYS = ("benchmarks", "corpus_benchmarks", "eval_groups", "data")


def _differences(old: dict, cfg: dict) -> list[str]:
    diff = []
    for k in RESULT_KEYS:
        a, b = old.get(k), cfg.get(k)
        if k in ADDITIVE_KEYS and isinstance(a, (list, dict)) and isinstance(b, (list, dict)):
            # only the benchmarks the folder already holds must be cut the same way
            if k == "eval_groups":
                a = {n: v for n, v in a.items() if n in old.get("benchmarks", [])}
                b = {n: v for n, v in (b or {}).items() if n in old.get("benchmarks", [])}
            if isinstance(a, list) and set(a) <= set(b):
                continue
            if isinstance(a, dict) and all(n in b and b[n] == v for n, v in a.items()):
                continue
            if k == "data":
                changed = [n for n in a if n in b and b[n] != a[n]]
                diff.append(
                    f"data: the files differ ({', '.join(changed)})"
                    if changed
                    else f"data: no longer present ({', '.join(n for n in a if n not in b)})"
                )
                continue
            diff.append(f"{k}: {a!r} -> {b!r} (adding is fine; removing or changing is not)")
        elif a != b:
            diff.append(f"{k}: {a!r} -> {b!r}")
    return diff


def held_config(cfg: dict, runs: list, done, on_file: dict | None) -> dict:
    """What ``config.json`` records: ``cfg`` with ``seeds`` the seeds the folder holds whole (every
    planned model of the seed done, ``done(run)``; a seed ``on_file`` holds that ``cfg`` does not
    plan stays held: its results stay) and ``seeds_pending`` the seeds this run asks for that are
    not finished (left out when none).

    Args:
        cfg: the profile of this run, ``seeds`` as asked.
        runs: its plan (:func:`plan`).
        done: ``done(run)``: whether every result of a run is in the folder.
        on_file: the folder's ``config.json`` before this write, or None.

    Returns:
        The dict to write as ``config.json``.
    """
    held = {s for s in cfg["seeds"] if all(done(r) for r in runs if r.seed == s)}
    held |= {s for s in (on_file or {}).get("seeds", []) if s not in cfg["seeds"]}
    pending = sorted(set(cfg["seeds"]) - held)
    out = {k: v for k, v in cfg.items() if k != "seeds_pending"}
    return {**out, "seeds": sorted(held), **({"seeds_pending": pending} if pending else {})}


def planned_seeds(cfg: dict) -> dict:
    """A folder's ``config.json`` as a plan: its held ``seeds`` and its ``seeds_pending`` together
    (what the same command would fill)."""
    return {**cfg, "seeds": sorted(set(cfg.get("seeds", [])) | set(cfg.get("seeds_pending", [])))}


def config_differences(old: dict, cfg: dict) -> list[str]:
    """How ``cfg`` differs from a folder's ``config.json`` (``old``; :data:`LEGACY` for the keys it
    predates) on :data:`RESULT_KEYS`, where the :data:`ADDITIVE_KEYS` may grow: empty when the two
    hold the same models and results, seed by seed."""
    return _differences({**LEGACY, **old}, cfg)


def check_reusable(out: Path, cfg: dict, legacy_data: dict | None = None) -> None:
    """Refuse to mix results of two set-ups (or two data sets) in one folder: the saved models and
    per-query results of ``out`` are reused only if its ``config.json`` agrees with ``cfg`` on
    :data:`RESULT_KEYS`, where the :data:`ADDITIVE_KEYS` may only grow (the new benchmarks are then
    evaluated for every model). The ``config.json`` binds once the folder holds a model, a result or
    the model locks of a grid (:mod:`hbkit.experiment.grid`): a second process of another set-up is
    refused before it takes a model."""
    path = out / "config.json"
    if not path.is_file() or not any(
        (out / sub).is_dir() and any((out / sub).iterdir())
        for sub in ("models", "per_query", LOCKS)
    ):
        return
    try:
        old = {**LEGACY, **read_run_json(path, dict)}
    except ValueError as e:
        raise ValueError(
            f"{e}. Its set-up is unknown, so its models and results cannot be reused safely: use "
            "another --out, or --force to retrain and re-evaluate everything there"
        ) from None
    for name, fp in (
        legacy_data or {}
    ).items():  # a corpus fingerprint written by hbkit before content_key
        if (
            isinstance(old.get("data"), dict)
            and old["data"].get(name) == fp
            and name in cfg.get("data", {})
        ):
            old["data"][name] = cfg["data"][name]
    diff = _differences(old, cfg)
    if diff:
        hint = (
            " (--profile lareqa is the former paper profile, without the paper's prefixes and nine "
            "training languages)"
            if any(d.startswith(("prompts", "train_languages")) for d in diff)
            else ""
        )
        raise ValueError(
            f"{out} holds models and results of another set-up ({'; '.join(diff)}); reusing them "
            f"would mix the two{hint}. Use another --out, or --force to retrain and re-evaluate "
            "everything there"
        )


def corpus_fingerprint(b) -> str:
    """A hash of a corpus benchmark: its topics, qrels and the bytes of its corpus files
    (:func:`hbkit.core.digests.content_key`)."""
    return content_key(list(b.files), b.topics, b.qrels, [Path(f).name for f in b.files], length=32)


def legacy_corpus_fingerprint(b) -> str:
    """The corpus fingerprint hbkit wrote before :func:`corpus_fingerprint` hashed the files' bytes
    (topics, qrels, the shards' names and sizes): a folder holding it is read as made with the same
    data, and upgraded."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    h.update(
        json.dumps(
            [b.topics, b.qrels, [(Path(f).name, Path(f).stat().st_size) for f in b.files]],
            sort_keys=True,
        ).encode()
    )
    return h.hexdigest()


def delta_target(cfg: dict) -> float:
    """The difference the power plan is made for: the profile's C5 margin ``delta`` (0.01 mAP by
    default)."""
    return float(cfg.get("delta") or 0.01)
