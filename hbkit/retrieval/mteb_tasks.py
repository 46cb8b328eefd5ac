"""MTEB's XQuADRetrieval and MLQARetrieval built offline from the releases hbkit reads, and mteb
runs on hbkit models.

mteb loads these tasks from the hub (``mteb/XQuADRetrieval``, ``mteb/MLQARetrieval``). hbkit builds
the same tasks from the local releases, the way mteb built them
(``mteb/tasks/Retrieval/multilingual/*Retrieval.py``'s ``load_data`` of mteb 1.12, whose output the
hub copies hold), and then mteb's own evaluator scores them:

* **XQuADRetrieval** (split ``validation``, one subset per language, 12 with ``ro``): the queries
  are the distinct question texts and the documents the distinct paragraphs of
  ``xquad.<lang>.json``, both stripped of surrounding whitespace (as the hub's ``google/xquad``
  holds them); a question's paragraph is relevant.
* **MLQARetrieval** (split ``validation`` from MLQA's dev files; ``test`` needs MLQA's test files,
  which the releases here lack): subset ``<context lang>-<question lang>`` in ISO 639-3
  (``zho-ara``: Chinese paragraphs, Arabic questions) of ``dev-context-<c>-question-<q>.json``;
  every question is a query, the distinct paragraphs are the documents, as given.

:func:`split_statistics` computes what mteb's ``descriptive_stats`` record (document and query
counts, text lengths), so a test compares every subset with the file mteb ships. :func:`run_mteb`
gives every model its own name and revision, so results of two seeds or strategies never collide in
mteb's result cache, and turns off mteb's reuse of results it already has for another model.
:func:`pooled_task` turns hbkit's own pooled settings (XQuAD-R and MLQA-R, mono / cross / multi,
LAReQA's relevance) into mteb tasks, cell by cell.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from hbkit.core.files import atomic_write_text
from hbkit.core.vocab import STRATEGY_ALPHA
from hbkit.data.benchmarks import load_benchmark
from hbkit.data.fetch import release_dir
from hbkit.data.registry import MLQA_LANGS, XQUAD_LANGS, DataError
from hbkit.data.textfile import read_json
from hbkit.encoders.load import fingerprint, load_encoder

log = logging.getLogger(__name__)

ISO3 = {
    "ar": "ara",
    "de": "deu",
    "el": "ell",
    "en": "eng",
    "es": "spa",
    "hi": "hin",
    "ro": "ron",
    "ru": "rus",
    "th": "tha",
    "tr": "tur",
    "vi": "vie",
    "zh": "zho",
}
TASKS = ("XQuADRetrieval", "MLQARetrieval")


def _doc_id(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _squad_rows(path: Path):
    """(question id, question, paragraph) of every question of a SQuAD-format release file, the
    texts exactly as the file holds them (mteb kept MLQA's surrounding spaces), read by hbkit's one
    text-file opener."""
    data, a, p = read_json(path, "SQuAD-format release file"), None, None
    try:
        for a, article in enumerate(data["data"]):
            for p, para in enumerate(article["paragraphs"]):
                for qa in para["qas"]:
                    yield qa["id"], qa["question"], para["context"]
    except (KeyError, TypeError) as e:
        raise DataError(
            f"{path}: not SQuAD-format JSON (article {a}, paragraph {p}: {e!r} missing or of the "
            "wrong type); get the release file again (data/README.md)"
        ) from None


def xquad_split(lang: str, data_dir: str | os.PathLike | None = None) -> dict:
    """One language of XQuADRetrieval, built as mteb built it.

    Args:
        lang: an XQuAD language (:data:`XQUAD_LANGS`).
        data_dir: the releases' folder (None: hbkit's data rule).

    Returns:
        ``{"queries": {id: text}, "corpus": {id: text}, "relevant_docs": {query id: {doc id: 1}}}``.

    Examples:
        >>> split = xquad_split("en")          # doctest: +SKIP
        >>> len(split["queries"]), len(split["corpus"])   # doctest: +SKIP
        (1185, 240)
    """
    if lang not in XQUAD_LANGS:
        raise DataError(f"XQuADRetrieval has no language {lang!r}; it has {', '.join(XQUAD_LANGS)}")
    rows = [
        (qid, q.strip(), c.strip())
        for qid, q, c in _squad_rows(
            release_dir("xquad", data_dir, [lang]) / "xquad" / f"xquad.{lang}.json"
        )
    ]
    # one query per distinct question text (mteb: its last id)
    ids = {question: qid for qid, question, _ in rows}
    corpus, relevant = {_doc_id(c): c for _, _, c in rows}, {}
    for _, question, context in rows:
        relevant.setdefault(ids[question], {})[_doc_id(context)] = 1
    return {
        "queries": {qid: q for q, qid in ids.items()},
        "corpus": corpus,
        "relevant_docs": relevant,
    }


def mlqa_split(
    context_lang: str, question_lang: str, data_dir: str | os.PathLike | None = None
) -> dict:
    """One (paragraph language, question language) subset of MLQARetrieval's validation split, as
    mteb built it.

    Args:
        context_lang: the language of the paragraphs (the documents).
        question_lang: the language of the questions (the queries).
        data_dir: the releases' folder (None: hbkit's data rule).

    Returns:
        ``{"queries": {id: text}, "corpus": {id: text}, "relevant_docs": {query id: {doc id: 1}}}``.

    Examples:
        >>> split = mlqa_split("zh", "ar")      # doctest: +SKIP
        >>> len(split["queries"]), len(split["corpus"])   # doctest: +SKIP
        (188, 161)
    """
    for lang in (context_lang, question_lang):
        if lang not in MLQA_LANGS:
            raise DataError(
                f"MLQARetrieval has no language {lang!r}; it has {', '.join(MLQA_LANGS)}"
            )
    path = (
        release_dir("mlqa", data_dir)
        / "mlqa"
        / "dev"
        / f"dev-context-{context_lang}-question-{question_lang}.json"
    )
    queries, corpus, relevant = {}, {}, {}
    for qid, question, context in _squad_rows(path):
        queries[qid] = question
        corpus[_doc_id(context)] = context
        relevant[qid] = {_doc_id(context): 1}
    return {"queries": queries, "corpus": corpus, "relevant_docs": relevant}


def subsets(task: str) -> dict[str, tuple]:
    """The subsets of a task and the arguments that build each: ``{"en": ("en",), ...}`` for
    XQuADRetrieval, ``{"zho-ara": ("zh", "ar"), ...}`` (49) for MLQARetrieval."""
    if task == "XQuADRetrieval":
        return {lang: (lang,) for lang in XQUAD_LANGS}
    if task == "MLQARetrieval":
        return {f"{ISO3[c]}-{ISO3[q]}": (c, q) for c in MLQA_LANGS for q in MLQA_LANGS}
    raise DataError(f"hbkit builds no MTEB task {task!r} offline; it builds {', '.join(TASKS)}")


def build_split(task: str, subset: str, data_dir: str | os.PathLike | None = None) -> dict:
    """The ``validation`` split of one subset of ``task`` (:func:`xquad_split` or
    :func:`mlqa_split`)."""
    args = subsets(task)
    if subset not in args:
        raise DataError(f"{task} has no subset {subset!r}; it has {', '.join(args)}")
    return (xquad_split if task == "XQuADRetrieval" else mlqa_split)(
        *args[subset], data_dir=data_dir
    )


def split_statistics(split: dict) -> dict:
    """What mteb's ``descriptive_stats`` record for a retrieval split: document and query counts and
    text lengths."""

    def texts(values) -> dict:
        lengths = [len(t) for t in values]
        return {
            "total_text_length": sum(lengths),
            "min_text_length": min(lengths),
            "average_text_length": sum(lengths) / len(lengths),
            "max_text_length": max(lengths),
            "unique_texts": len(set(values)),
        }

    per_query = [len(v) for v in split["relevant_docs"].values()]
    return {
        "num_documents": len(split["corpus"]),
        "num_queries": len(split["queries"]),
        "documents_text_statistics": texts(list(split["corpus"].values())),
        "queries_text_statistics": texts(list(split["queries"].values())),
        "relevant_docs_statistics": {
            "num_relevant_docs": sum(per_query),
            "max_relevant_docs_per_query": max(per_query),
            "unique_relevant_docs": len({d for v in split["relevant_docs"].values() for d in v}),
        },
    }


def _local_task(base: type, splits: dict[str, dict], split: str) -> type:
    """A subclass of the mteb task ``base`` whose ``load_data`` serves ``splits`` (subset ->
    queries, corpus, relevant_docs) as its ``split``, in mteb's own dataset format, instead of
    reading the hub."""
    from datasets import Dataset  # heavy: datasets (pyarrow)

    class Local(base):
        def load_data(self, *args, **kwargs):
            if self.data_loaded:
                return
            self.dataset = {
                s: {
                    split: {
                        "queries": Dataset.from_list(
                            [{"id": k, "text": v} for k, v in b["queries"].items()]
                        ),
                        "corpus": Dataset.from_list(
                            [{"id": k, "text": v, "title": ""} for k, v in b["corpus"].items()]
                        ),
                        "relevant_docs": b["relevant_docs"],
                        "top_ranked": None,
                    }
                }
                for s, b in splits.items()
            }
            self.data_loaded = True

    return Local


def offline_task(
    task: str, subsets_: list[str] | None = None, data_dir: str | os.PathLike | None = None
):
    """mteb's own task object (its metadata, evaluator and scores), its data built here from the
    local releases.

    Args:
        task: ``XQuADRetrieval`` or ``MLQARetrieval``.
        subsets_: the subsets to keep (None: every one).
        data_dir: the releases' folder (None: hbkit's data rule).

    Returns:
        The ``mteb`` task, restricted to those subsets and to the ``validation`` split, with its
            data loaded.

    Examples:
        >>> t = offline_task("XQuADRetrieval", ["en", "de"])   # doctest: +SKIP
    """
    import mteb  # heavy: mteb (torch)

    names = list(subsets(task)) if subsets_ is None else list(subsets_)
    # every refusal before mteb is touched
    built = {s: build_split(task, s, data_dir) for s in names}
    base = type(mteb.get_task(task))

    # mteb's loader reads the hub; this one, the releases
    Offline = _local_task(base, built, "validation")
    Offline.__name__ = base.__name__
    return Offline().filter_eval_splits(["validation"]).filter_languages(None, hf_subsets=names)


def _is_pooled(name: str) -> bool:
    bench, _, setting = name.partition(":")
    return bench in POOLED_BENCHMARKS and setting in POOLED_SETTINGS


def _pooled(name: str, data_dir):
    bench, _, setting = name.partition(":")
    return pooled_task(load_benchmark(bench, data_dir), setting)


def model_identity(model, source: str) -> tuple[str, str]:
    """The name and revision mteb files a model's results under: a model hbkit trained is
    ``hbkit/<strategy>-a<α>-s<seed>``, any other keeps ``source`` (its hub id or path); the revision
    is always its content fingerprint (:func:`hbkit.encoders.load.fingerprint`), so two seeds, two
    strategies, a retrained model or the embedded copy of a hub model never share results (mteb
    would otherwise file a local model under its base model's name, and skip the tasks that name
    already has)."""
    card = Path(source) / "hbkit_training.json"
    name = source
    if card.is_file():
        cfg = json.loads(card.read_text())["config"]
        alpha = cfg["alpha"] if cfg["strategy"] == "hybrid" else STRATEGY_ALPHA[cfg["strategy"]]
        name = f"hbkit/{cfg['strategy']}-a{alpha:g}-s{cfg['seed']}"
    return name, fingerprint(model)


def check_request(
    tasks: list[str], subsets_: dict[str, list[str]] | None
) -> dict[str, list[str] | None]:
    """Every task and subset asked for exists (before any model loads)."""
    unknown = [t for t in tasks if t not in TASKS and not _is_pooled(t)]
    if unknown or not tasks:
        raise DataError(
            f"--tasks {','.join(tasks)!r}: hbkit builds {', '.join(TASKS)} offline, and its pooled "
            f"settings as <benchmark>:<setting> ({', '.join(POOLED_BENCHMARKS)} x "
            f"{', '.join(POOLED_SETTINGS)}, e.g. mlqa-r:multi)"
        )
    chosen = {}
    for t in tasks:
        want = (subsets_ or {}).get(t)
        if _is_pooled(t):
            if want:
                raise DataError(
                    f"--subsets: {t} runs whole (its cells are hbkit's table's); leave it out of "
                    "--subsets"
                )
            chosen[t] = None
            continue
        bad = [s for s in want or [] if s not in subsets(t)]
        if bad:
            raise DataError(f"{t} has no subset {bad[0]!r}; it has {', '.join(subsets(t))}")
        chosen[t] = want
    return chosen


def run_mteb(
    model: str,
    tasks: list[str],
    out: str | os.PathLike,
    subsets_: dict[str, list[str]] | None = None,
    data_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool = True,
):
    """Run mteb's evaluator on a trained or hub model, on tasks built offline from the local
    releases.

    Args:
        model: a model folder (``runs/x/models/hybrid-s0/model``) or a hub id (offline: its embedded
            copy).
        tasks: task names among :data:`TASKS`, or hbkit's pooled settings as
            ``<benchmark>:<setting>`` (:func:`pooled_task`: ``xquad-r:multi``,
            ``mlqa-r:cross``, ...).
        out: the results folder: mteb's own result layout,
            ``<out>/results/<name>/<revision>/<task>.json``, plus ``<out>/mteb_scores.csv`` (one row
            per task, subset, split).
        subsets_: per task, the subsets to run (None: all of them).
        data_dir: the releases' folder (None: hbkit's data rule).
        overwrite: run again even where ``out`` holds this model's results (same name and revision).
        progress: show mteb's progress bars.

    Returns:
        A DataFrame: ``model, revision, task, subset, split, main_score, ndcg_at_10, recall_at_100,
            map_at_10``.

    Examples:
        >>> model = "runs/cpu/models/hybrid-s0/model"  # doctest: +SKIP
        >>> run_mteb(model, ["XQuADRetrieval"], "runs/cpu/mteb")  # doctest: +SKIP
    """
    import mteb  # heavy: mteb (torch)
    import pandas as pd
    from mteb.cache import ResultCache
    from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper

    chosen = check_request(list(tasks), subsets_)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out}: a file, not a folder; name a folder for mteb's results")
    built = [
        _pooled(t, data_dir) if _is_pooled(t) else offline_task(t, chosen[t], data_dir)
        for t in chosen
    ]  # the data, before the model loads
    encoder = load_encoder(model)
    name, revision = model_identity(encoder, model)
    own = getattr(encoder, "prompts", None) or {}
    prompts = (
        {"query": own["query"], "document": own["passage"]}
        if {"query", "passage"} <= set(own)
        else None
    )
    wrapped = SentenceTransformerEncoderWrapper(encoder, model_prompts=prompts)
    wrapped.mteb_model_meta = wrapped.mteb_model_meta.model_copy(
        update={"name": name, "revision": revision}
    )
    result = mteb.evaluate(
        wrapped,
        built,
        cache=ResultCache(out),
        show_progress_bar=progress,
        overwrite_strategy="always" if overwrite else "only-missing",
    )
    rows = [
        _score_row(name, revision, tr.task_name, split, s)
        for tr in result.task_results
        for split, scores in tr.scores.items()
        for s in scores
    ]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "mteb_scores.csv", scores_table(out).to_csv(index=False))
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


SCORE_COLUMNS = [
    "model",
    "revision",
    "task",
    "subset",
    "split",
    "main_score",
    "ndcg_at_10",
    "recall_at_100",
    "map_at_10",
]


def _score_row(name: str, revision: str, task: str, split: str, s: dict) -> dict:
    return {
        "model": name,
        "revision": revision,
        "task": task,
        "subset": s["hf_subset"],
        "split": split,
        "main_score": s["main_score"],
        "ndcg_at_10": s.get("ndcg_at_10"),
        "recall_at_100": s.get("recall_at_100"),
        "map_at_10": s.get("map_at_10"),
    }


def scores_table(out: str | os.PathLike):
    """Every score in an mteb results folder (``<out>/results/<name>/<revision>/<task>.json``,
    mteb's layout), one row per (model, revision, task, subset, split), columns
    :data:`SCORE_COLUMNS`; empty when there is none."""
    import pandas as pd

    rows = []
    for path in sorted(Path(out).glob("results/*/*/*.json")):
        if path.name == "model_meta.json":
            continue
        meta = path.parent / "model_meta.json"
        name = (
            json.loads(meta.read_text()).get("name") if meta.is_file() else path.parent.parent.name
        )
        result = read_json(path, "mteb result file")
        for split, scores in result.get("scores", {}).items():
            rows += [
                _score_row(name, path.parent.name, result.get("task_name", path.stem), split, s)
                for s in scores
            ]
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


# --------------------------------------------------------------------------------------------------
# hbkit's pooled settings as mteb tasks
# --------------------------------------------------------------------------------------------------
#: the pooled benchmarks and settings that run as mteb tasks, named ``<benchmark>:<setting>``
POOLED_BENCHMARKS = ("xquad-r", "xquad-r-eval", "mlqa-r")
POOLED_SETTINGS = ("mono", "cross", "multi")
SCRIPT = {
    "ar": "Arab",
    "de": "Latn",
    "el": "Grek",
    "en": "Latn",
    "es": "Latn",
    "hi": "Deva",
    "ro": "Latn",
    "ru": "Cyrl",
    "th": "Thai",
    "tr": "Latn",
    "vi": "Latn",
    "zh": "Hans",
}


def _lang_code(lang: str) -> str:
    return f"{ISO3[lang]}-{SCRIPT[lang]}"


def pooled_splits(bench, setting: str) -> dict[str, dict]:
    """A pooled benchmark's setting as mteb retrieval splits, one subset per cell of hbkit's table,
    with LAReQA's relevance: every answer sentence in the pool is relevant (in ``multi``, the answer
    in every language).

    Args:
        bench: a :class:`~hbkit.data.retrieval_benchmark.RetrievalBenchmark`
            (``load_benchmark("xquad-r")``, maybe subsampled).
        setting: ``mono`` (subset ``<lang>``: queries and pool in that language), ``cross`` (subset
            ``<query lang>-<pool lang>``) or ``multi`` (subset ``<query lang>``: the pool of every
            language).

    Returns:
        ``{subset: {"queries", "corpus", "relevant_docs"}}``; a query with no relevant candidate in
            a pool is left
        out of that subset, as hbkit's own evaluation leaves it unscored.

    Examples:
        >>> splits = pooled_splits(load_benchmark("xquad-r"), "multi")   # doctest: +SKIP
        >>> sorted(splits)[:2], len(splits["en"]["corpus"])                  # doctest: +SKIP
    """
    if setting not in POOLED_SETTINGS:
        raise DataError(f"setting {setting!r}: use one of {', '.join(POOLED_SETTINGS)}")
    langs = sorted(set(bench.queries["lang"]))
    pools = {
        "mono": [(q, [q]) for q in langs],
        "multi": [(q, langs) for q in langs],
        "cross": [(q, [c]) for q in langs for c in langs if c != q],
    }[setting]
    out = {}
    for qlang, clangs in pools:
        cands = bench.candidates[bench.candidates["lang"].isin(clangs)]
        in_pool = set(cands["id"])
        queries = bench.queries[bench.queries["lang"] == qlang]
        rel = {q: {c: 1 for c in bench.relevance[q] if c in in_pool} for q in queries["id"]}
        rel = {q: r for q, r in rel.items() if r}
        name = qlang if setting != "cross" else f"{qlang}-{clangs[0]}"
        out[name] = {
            "queries": {q: t for q, t in zip(queries["id"], queries["text"]) if q in rel},
            "corpus": dict(zip(cands["id"], cands["text"])),
            "relevant_docs": rel,
        }
    return out


def pooled_task(bench, setting: str):
    """A pooled setting of a hbkit benchmark as an mteb retrieval task (``HbkitXquadRMulti``, ...)
    that any mteb user can score any model on; its data comes from :func:`pooled_splits`.

    Args:
        bench: a :class:`~hbkit.data.retrieval_benchmark.RetrievalBenchmark`.
        setting: ``mono``, ``cross`` or ``multi``.

    Returns:
        The mteb task, data loaded, split ``test``, main score ``ndcg_at_10``.

    Examples:
        >>> task = pooled_task(load_benchmark("mlqa-r"), "multi")            # doctest: +SKIP
        >>> mteb.evaluate(model, [task], cache=None)                         # doctest: +SKIP
    """
    import mteb  # heavy: mteb (torch)

    splits = pooled_splits(bench, setting)
    base = type(mteb.get_task("XQuADRetrieval"))
    name = (
        "Hbkit"
        + "".join(p.capitalize() for p in bench.name.replace("-", " ").split())
        + setting.capitalize()
    )
    pool = {_lang_code(x) for x in set(bench.candidates["lang"])} if setting == "multi" else set()
    langs = {
        s: sorted({_lang_code(x) for x in (s.split("-") if setting == "cross" else [s])} | pool)
        for s in splits
    }
    metadata = base.metadata.model_copy(
        update={
            "name": name,
            "eval_splits": ["test"],
            "eval_langs": langs,
            "main_score": "ndcg_at_10",
            "description": f"hbkit's {setting} setting of {bench.name} (LAReQA, arXiv "
            "2004.05484): every sentence of the benchmark is a candidate and the answer sentence "
            "in every language of the pool is relevant",
            "reference": "https://arxiv.org/abs/2408.10536",
            "dataset": {"path": f"hbkit/{bench.name}", "revision": "local"},
        }
    )

    Pooled = _local_task(base, splits, "test")
    Pooled.metadata = metadata
    Pooled.__name__ = name
    return Pooled()
