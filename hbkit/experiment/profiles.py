"""Run profiles (``ci``, ``cpu``, ``lareqa``, ``paper``) as plain, copyable data, and their
validation."""

from __future__ import annotations

import os

from hbkit.core.vocab import FIXES, STRATEGIES
from hbkit.data.corpora import corpus_parts
from hbkit.data.registry import DataError, check_benchmark_names, is_corpus_benchmark
from hbkit.retrieval.mteb_tasks import check_request as check_mteb_tasks

#: Run profiles: plain data a user can read and copy (``hbkit compare --profile NAME``; every key is
#: also a command-line option, ``--batch-size 16`` etc., see :data:`PROFILE_KEYS`). ``eval_groups``:
#: query groups kept per benchmark (None = the full benchmark), with a proportional share of the
#: other candidates as distractors (see ``RetrievalBenchmark.subsample``), drawn with ``eval_seed``
#: — fixed, so every model of every training seed is scored on the same queries and candidates.
#: ``seeds`` are training seeds: one model per (strategy, α, seed); they change the sampler, the
#: subsample of training groups and dropout, never what is evaluated.
_COMMON = {
    "strategies": ["xx", "xy", "hybrid"],
    "alphas": [],
    "train_languages": None,
    "eval_seed": 0,
    "permutations": 10000,
    "delta": 0.01,
    "corpus": "xquad-train",
    "benchmarks": ["xquad-r-eval", "mlqa-r", "tydiqa"],
    "corpus_benchmarks": [],
    "val_groups": 0,
    "eval_steps": 20,
    "eval_metric": "loss",
    "early_stopping_patience": 0,
    "weight_decay": 0.01,
    "prompts": None,
    "val_corpus": "held-out",
    "fixes": list(FIXES),
    "fix_groups": 100,
    "rankings_k": 20,
    "mteb_tasks": [],
}


#: the paper's nine training languages (arXiv 2408.10536 §3.1): Greek and Vietnamese are never
#: trained on and are reported as unseen languages
PAPER_TRAIN_LANGUAGES = ["ar", "de", "en", "es", "hi", "ru", "th", "tr", "zh"]


#: the prefixes the paper puts before queries and passages for encoders without prompts (XLM-R,
#: LaBSE), after E5
PAPER_PROMPTS = {"query": "Query: ", "passage": "Passage: "}


PROFILES: dict[str, dict] = {
    # CI: seconds, on the tiny random encoder; checks the pipeline, not the research question
    "ci": {
        **_COMMON,
        "model": "hbkit/tiny",
        "seeds": [0, 1],
        "steps": 4,
        "batch_size": 8,
        "lr": 1e-3,
        "freeze_word_embeddings": False,
        "train_groups": 64,
        "eval_groups": {"xquad-r-eval": 12, "mlqa-r": 12, "tydiqa": 30},
        "umap_groups": 10,
        "permutations": 2000,
        "corpus_benchmarks": ["tydiqa-corpus:sw"],
    },
    # CPU (default without a GPU): ~25 min per seed on 2 cores. Cut: 40 steps at batch 32 (paper:
    # batch 100, full epochs), frozen word embeddings, evaluation on subsamples (whole parallel
    # groups kept).
    "cpu": {
        **_COMMON,
        "model": "intfloat/multilingual-e5-small",
        "seeds": [0],
        "steps": 40,
        "batch_size": 32,
        "lr": 3e-5,
        "freeze_word_embeddings": True,
        "train_groups": None,
        "eval_groups": {"xquad-r-eval": 120, "mlqa-r": 150, "tydiqa": 300},
        "umap_groups": 40,
    },
    # LAReQA's protocol: SQuAD v1.1 train + XTREME translate-train in all its languages, batch 100,
    # lr 3e-5, weight decay 0.01, α 0.5, early stopping on the validation loss of held-out groups, 3
    # seeds, no prefixes, zero-shot on the FULL XQuAD-R (nothing of XQuAD is trained on), MLQA-R,
    # TyDi-QA and MIRACL where its files are present. One encoder per run: XLM-R here. Needs a GPU.
    "lareqa": {
        **_COMMON,
        "model": "FacebookAI/xlm-roberta-base",
        "alphas": [0.25, 0.75],
        "seeds": [0, 1, 2],
        "steps": 30000,
        "batch_size": 100,
        "lr": 3e-5,
        "freeze_word_embeddings": False,
        "train_groups": None,
        "eval_groups": {},
        "umap_groups": 60,
        "corpus": "squad-translate-train",
        "benchmarks": ["xquad-r", "mlqa-r", "tydiqa"],
        # MIRACL's six smallest corpora (2.0M passages in all); add more with --corpus-benchmarks
        "corpus_benchmarks": ["miracl:bn,hi,sw,te,th,yo"],
        "val_groups": 1000,
        "eval_steps": 500,
        "early_stopping_patience": 3,
        "fix_groups": 10000,
    },
}


#: the paper's public training data: mMARCO (a stated subsample of its MS MARCO training queries, in
#: the paper's languages it has: en ar zh de es ru hi) mixed with SQuAD translate-train (which
#: brings th and tr), one corpus per batch in proportion to its rows. The paper's in-house
#: translations of six QA sets are not public.
PAPER_CORPUS = "mmarco:200000+squad-translate-train"


# The paper's protocol (arXiv 2408.10536 §2.1, §3.1, A.1), as far as public data allow: the paper's
# "Query: " / "Passage: " prefixes for encoders without prompts (mE5 keeps its own), its nine
# training languages (el and vi unseen), mMARCO + translate-train mixed one corpus per batch, and
# the checkpoint with the lowest validation loss on SQuADShifts (4,000 of its English questions, the
# same for every model). `make paper` runs XLM-R, LaBSE, mE5.
PROFILES["paper"] = {
    **PROFILES["lareqa"],
    "prompts": dict(PAPER_PROMPTS),
    "train_languages": list(PAPER_TRAIN_LANGUAGES),
    "corpus": PAPER_CORPUS,
    "val_corpus": "squadshifts",
    "val_groups": 4000,
}


#: the former name of the GPU profile, which was LAReQA's protocol: it stays that, so its folders
#: stay reusable
PROFILES["gpu"] = PROFILES["lareqa"]


#: Every profile key: its type (as the command line parses it) and what it means. The defaults live
#: in :data:`PROFILES` only.
PROFILE_KEYS: dict[str, tuple[str, str]] = {
    "model": ("str", "base encoder: a hub name, a local folder, or tiny"),
    "strategies": ("list[str]", "strategies to train, comma-separated (xx,xy,hybrid)"),
    "alphas": ("list[float]", "extra hybrid α values, e.g. 0.25,0.75 (0.5 is the hybrid run)"),
    "seeds": ("list[int]", "training seeds, e.g. 0,1,2: one model per strategy, α and seed"),
    "steps": ("int", "optimizer steps per model"),
    "batch_size": ("int", "pairs per step"),
    "lr": ("float", "learning rate"),
    "freeze_word_embeddings": ("bool", "keep the input word embeddings fixed"),
    "train_groups": ("int?", "train on a seeded subset of this many parallel groups (none: all)"),
    "train_languages": ("list[str]?", "training languages (none: all)"),
    "eval_groups": (
        "dict[int]",
        "query groups kept per benchmark, e.g. xquad-r-eval=120,mlqa-r=150 (none: full)",
    ),
    "eval_seed": (
        "int",
        "seed of the evaluation subsample (the same for every model and training seed)",
    ),
    "umap_groups": ("int", "parallel XQuAD-R groups in the UMAP pictures"),
    "permutations": (
        "int",
        "sign-flip permutations for p_models (these trained models; decides nothing)",
    ),
    "delta": ("float", "C5: hybrid counts as within delta (mAP) of the best strategy"),
    "corpus": (
        "str",
        "training corpus: xquad-train, squad-translate-train, mmarco[:N], a .jsonl/.csv/.parquet "
        "of "
        "pairs, or a mix joined by + (mmarco:200000+squad-translate-train): one corpus per batch",
    ),
    "benchmarks": (
        "list[str]",
        "LAReQA-style benchmarks (full-pool mAP): xquad-r-eval or xquad-r, mlqa-r, tydiqa",
    ),
    "corpus_benchmarks": (
        "list[str]?",
        "corpus benchmarks searched with faiss, e.g. miracl:sw,te (skipped, and "
        "said so, when their files are absent); none: no corpus benchmark",
    ),
    "val_groups": (
        "int",
        "groups held out of training for in-training evaluation (0: none); with a val_corpus, "
        "how many of its groups are kept (0: all)",
    ),
    "val_corpus": (
        "str",
        "validation data for the best checkpoint and early stopping: held-out (val_groups of the "
        "training pairs), squadshifts (the paper's), or a pairs file",
    ),
    "eval_steps": ("int", "evaluate (and checkpoint) every N steps when there is validation data"),
    "eval_metric": ("str", "best-checkpoint criterion: loss (the paper) or map"),
    "early_stopping_patience": ("int", "stop after N evaluations without improvement (0: never)"),
    "weight_decay": ("float", "AdamW weight decay"),
    "fixes": (
        "list[str]?",
        "training-free fixes of language bias evaluated beside every model, from its embeddings: "
        "shift (SHIFT), center (language-wise centering); none: no fix",
    ),
    "fix_groups": ("int?", "training groups whose passages estimate the fixes (none: all)"),
    "mteb_tasks": (
        "list[str]?",
        "MTEB tasks that mteb's own evaluator runs on every model, offline: XQuADRetrieval, "
        "MLQARetrieval, or hbkit's pooled settings as benchmark:setting (results in "
        "<out>/mteb, mteb's layout; the report shows them); none: no MTEB",
    ),
    "rankings_k": (
        "int",
        "keep each multilingual query's top-k and relevant candidates with scores (rankings/), so "
        "that a ranking measure added later needs no weights; 0: none",
    ),
    "prompts": (
        "dict[str]?",
        "prefixes for an encoder without prompts of its own, e.g. 'query=Query: ,passage=Passage: "
        "' (none: no prefix; an encoder with its own prompts keeps them)",
    ),
}


class ProfileError(ValueError):
    """A profile key or value is not valid; the message names it and the fix."""


def check_profile(cfg: dict) -> dict:
    """Validate a profile before any work starts (a bad α must not surface after hours of
    training)."""

    def fail(key, why):
        raise ProfileError(f"{key}={cfg.get(key)!r}: {why}")

    unknown = set(cfg.get("strategies") or []) - set(STRATEGIES)
    if not cfg.get("strategies") or unknown:
        fail("strategies", f"use one or more of {', '.join(STRATEGIES)}")
    for key in ("strategies", "alphas", "seeds"):
        vals = list(cfg.get(key) or [])
        if len(set(vals)) != len(vals):
            fail(key, "a value is given twice; list each once")
    if any(not isinstance(a, (int, float)) or not 0 <= a <= 1 for a in cfg.get("alphas") or []):
        fail("alphas", "every α must lie in [0, 1]")
    if not cfg.get("seeds") or any(
        not isinstance(x, int) or not 0 <= x < 2**32 for x in cfg["seeds"]
    ):
        fail("seeds", "give one or more whole numbers from 0 to 2**32 - 1, e.g. 0,1,2")
    for key, low in (
        ("steps", 1),
        ("batch_size", 2),
        ("umap_groups", 2),
        ("permutations", 100),
        ("eval_seed", 0),
        ("rankings_k", 0),
    ):
        if not isinstance(cfg.get(key), int) or isinstance(cfg.get(key), bool) or cfg[key] < low:
            fail(key, f"must be an integer >= {low}")
    if cfg.get("train_groups") is not None and (
        not isinstance(cfg["train_groups"], int) or cfg["train_groups"] < 2
    ):
        fail("train_groups", "must be an integer >= 2, or none for all groups")
    if not isinstance(cfg.get("lr"), (int, float)) or not 0 <= cfg["lr"] < float(
        "inf"
    ):  # NaN fails too
        fail("lr", "must be a finite number >= 0")

    names = check_benchmark_names(
        list(cfg.get("benchmarks") or []) + list(cfg.get("corpus_benchmarks") or [])
    )
    if any(is_corpus_benchmark(n) for n in cfg.get("benchmarks") or []) or any(
        not is_corpus_benchmark(n) for n in cfg.get("corpus_benchmarks") or []
    ):
        fail(
            "benchmarks",
            "list pool benchmarks in benchmarks and miracl:/tydiqa-corpus: ones in "
            "corpus_benchmarks",
        )
    if not cfg.get("benchmarks"):
        fail("benchmarks", "give at least one of xquad-r-eval, xquad-r, mlqa-r, tydiqa")
    if "xquad-r" in names and cfg.get("corpus") == "xquad-train":
        fail(
            "benchmarks",
            "xquad-r shares its articles with xquad-train; evaluate on xquad-r-eval (held-out "
            "articles)",
        )
    unknown_eval = set(cfg.get("eval_groups") or {}) - set(names)
    if unknown_eval:
        fail("eval_groups", f"{sorted(unknown_eval)} are not among the benchmarks {names}")
    if cfg.get("eval_metric") not in ("loss", "map"):
        fail("eval_metric", "use loss or map")
    for key in ("val_groups", "early_stopping_patience"):
        if not isinstance(cfg.get(key), int) or cfg[key] < 0:
            fail(key, "must be an integer >= 0")
    validates = bool(cfg.get("val_groups")) or cfg.get("val_corpus", "held-out") != "held-out"
    if cfg.get("early_stopping_patience") and not validates:
        fail("early_stopping_patience", "needs validation data: val_groups > 0 or a val_corpus")
    vc = cfg.get("val_corpus", "held-out")
    if not isinstance(vc, str) or not (
        vc in ("held-out", "squadshifts") or vc.endswith((".jsonl", ".csv", ".parquet"))
    ):
        fail("val_corpus", "use held-out, squadshifts, or a .jsonl/.csv/.parquet file of pairs")
    corpus = cfg.get("corpus")
    if not isinstance(corpus, str) or not corpus.strip():
        fail(
            "corpus",
            "name a corpus (xquad-train, squad-translate-train, mmarco[:N]), a pairs file, or a "
            "mix joined by +",
        )
    # the mix parser: an unknown part, or two parts of one name, is refused here
    corpus_parts(corpus)
    if not isinstance(cfg.get("delta"), (int, float)) or cfg["delta"] < 0:
        fail(
            "delta", "must be >= 0 (the largest shortfall of hybrid that still counts as 'as good')"
        )
    prompts = cfg.get("prompts")
    if prompts is not None and (
        not isinstance(prompts, dict)
        or not prompts
        or set(prompts) - {"query", "passage"}
        or not all(isinstance(v, str) for v in prompts.values())
    ):
        fail(
            "prompts",
            "give query and/or passage prefixes as text, e.g. query=Query: ,passage=Passage: , or "
            "none",
        )
    if cfg.get("mteb_tasks"):
        try:
            check_mteb_tasks(list(cfg["mteb_tasks"]), None)
        except (DataError, TypeError) as e:
            fail("mteb_tasks", str(e))
    fixes = cfg.get("fixes") or []
    if (
        not isinstance(fixes, (list, tuple))
        or set(fixes) - set(FIXES)
        or len(set(fixes)) != len(fixes)
    ):
        fail("fixes", f"list each of {', '.join(FIXES)} at most once, or none")
    if cfg.get("fix_groups") is not None and (
        not isinstance(cfg["fix_groups"], int)
        or isinstance(cfg["fix_groups"], bool)
        or cfg["fix_groups"] < 2
    ):
        fail("fix_groups", "must be an integer >= 2, or none for all training groups")
    for name, n in (cfg.get("eval_groups") or {}).items():
        if not isinstance(n, int) or n < 1:
            fail(
                "eval_groups",
                f"{name}={n!r}: each must be an integer >= 1 (leave a benchmark out for all "
                "groups)",
            )
    return cfg


def default_profile() -> str:
    """The profile that ``auto`` names (defined in :func:`profile`)."""
    env = os.environ.get("HBKIT_PROFILE")
    if env:
        if env not in PROFILES:
            raise ProfileError(f"HBKIT_PROFILE={env!r}: use one of {', '.join(PROFILES)}")
        return env
    import torch

    return "paper" if torch.cuda.is_available() else "cpu"


def profile(name: str = "auto", **overrides) -> dict:
    """A copy of profile ``name`` with ``overrides`` applied, validated before any work starts.

    Args:
        name: ``ci``, ``cpu``, ``lareqa`` (LAReQA's protocol), ``paper`` (the paper's: prefixes,
            nine training languages, mMARCO + translate-train, SQuADShifts early stopping), ``gpu``
            (LAReQA's, under its older name), or ``auto``. ``auto`` means ``$HBKIT_PROFILE`` when it
            is set, else ``paper`` when CUDA is available, else ``cpu`` (:func:`default_profile`);
            this is the one statement of it.
        **overrides: any profile key (:data:`PROFILE_KEYS`); ``None`` keeps the profile's value, and
            ``[]`` for ``train_languages`` (or ``{}`` for ``prompts``) says "none": every language
            (no prefixes).

    Returns:
        A plain dict (safe to edit): model, strategies, alphas, seeds, steps, batch size,
            benchmarks, ...

    Raises:
        ProfileError: an unknown profile or key, or a value out of range, named with the fix.

    Examples:
        >>> cfg = profile("cpu", seeds=[0, 1, 2])
        >>> cfg["strategies"]
        ['xx', 'xy', 'hybrid']
    """
    name = default_profile() if name in (None, "auto") else name
    if name not in PROFILES:
        raise ProfileError(f"unknown profile {name!r}; use one of {', '.join(PROFILES)} or auto")
    unknown = set(overrides) - set(PROFILE_KEYS)
    if unknown:
        raise ProfileError(
            f"unknown profile keys {sorted(unknown)}; known: {', '.join(PROFILE_KEYS)}"
        )
    cfg = {
        **PROFILES[name],
        **{k: v for k, v in overrides.items() if v is not None},
        "profile": "lareqa" if name == "gpu" else name,
    }
    # --prompts none: no prefixes (None itself means "keep the profile's")
    if cfg.get("prompts") == {}:
        cfg["prompts"] = None
    if cfg.get("train_languages") == []:  # --train-languages none: all of them
        cfg["train_languages"] = None
    return check_profile(cfg)
