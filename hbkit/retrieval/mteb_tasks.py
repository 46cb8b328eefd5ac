"""MTEB's XQuADRetrieval and MLQARetrieval built offline from the releases hbkit reads, and mteb runs on hbkit models.

mteb loads these tasks from the hub (``mteb/XQuADRetrieval``, ``mteb/MLQARetrieval``). hbkit builds the same
tasks from the local releases, the way mteb built them (``mteb/tasks/Retrieval/multilingual/*Retrieval.py``'s
``load_data`` of mteb 1.12, whose output the hub copies hold), and then mteb's own evaluator scores them:

* **XQuADRetrieval** (split ``validation``, one subset per language, 12 with ``ro``): the queries are the
  distinct question texts and the documents the distinct paragraphs of ``xquad.<lang>.json``, both stripped of
  surrounding whitespace (as the hub's ``google/xquad`` holds them); a question's paragraph is relevant.
* **MLQARetrieval** (split ``validation`` from MLQA's dev files; ``test`` needs MLQA's test files, which the
  releases here lack): subset ``<context lang>-<question lang>`` in ISO 639-3 (``zho-ara``: Chinese
  paragraphs, Arabic questions) of ``dev-context-<c>-question-<q>.json``; every question is a query, the
  distinct paragraphs are the documents, as given.

:func:`split_statistics` computes what mteb's ``descriptive_stats`` record (document and query counts, text
lengths), so a test compares every subset with the file mteb ships. :func:`run_mteb` gives every model its own
name and revision, so results of two seeds or strategies never collide in mteb's result cache, and turns off
mteb's reuse of results it already has for another model.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from hbkit.data.registry import MLQA_LANGS, XQUAD_LANGS, DataError
from hbkit.data.releases import release_dir
from hbkit.data.textfile import read_json

log = logging.getLogger(__name__)

ISO3 = {"ar": "ara", "de": "deu", "el": "ell", "en": "eng", "es": "spa", "hi": "hin", "ro": "ron", "ru": "rus",
        "th": "tha", "tr": "tur", "vi": "vie", "zh": "zho"}
TASKS = ("XQuADRetrieval", "MLQARetrieval")


def _doc_id(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _squad_rows(path: Path):
    """(question id, question, paragraph) of every question of a SQuAD-format release file, the texts exactly as
    the file holds them (mteb kept MLQA's surrounding spaces), read by hbkit's one text-file opener."""
    data, a, p = read_json(path, "SQuAD-format release file"), None, None
    try:
        for a, article in enumerate(data["data"]):
            for p, para in enumerate(article["paragraphs"]):
                for qa in para["qas"]:
                    yield qa["id"], qa["question"], para["context"]
    except (KeyError, TypeError) as e:
        raise DataError(f"{path}: not SQuAD-format JSON (article {a}, paragraph {p}: {e!r} missing or of the wrong "
                        "type); get the release file again (data/README.md)") from None


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
    rows = [(qid, q.strip(), c.strip()) for qid, q, c in
            _squad_rows(release_dir("xquad", data_dir, [lang]) / "xquad" / f"xquad.{lang}.json")]
    ids = {question: qid for qid, question, _ in rows}   # one query per distinct question text (mteb: its last id)
    corpus, relevant = {_doc_id(c): c for _, _, c in rows}, {}
    for _, question, context in rows:
        relevant.setdefault(ids[question], {})[_doc_id(context)] = 1
    return {"queries": {qid: q for q, qid in ids.items()}, "corpus": corpus, "relevant_docs": relevant}


def mlqa_split(context_lang: str, question_lang: str, data_dir: str | os.PathLike | None = None) -> dict:
    """One (paragraph language, question language) subset of MLQARetrieval's validation split, as mteb built it.

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
            raise DataError(f"MLQARetrieval has no language {lang!r}; it has {', '.join(MLQA_LANGS)}")
    path = release_dir("mlqa", data_dir) / "mlqa" / "dev" / f"dev-context-{context_lang}-question-{question_lang}.json"
    queries, corpus, relevant = {}, {}, {}
    for qid, question, context in _squad_rows(path):
        queries[qid] = question
        corpus[_doc_id(context)] = context
        relevant[qid] = {_doc_id(context): 1}
    return {"queries": queries, "corpus": corpus, "relevant_docs": relevant}


def subsets(task: str) -> dict[str, tuple]:
    """The subsets of a task and the arguments that build each: ``{"en": ("en",), ...}`` for XQuADRetrieval,
    ``{"zho-ara": ("zh", "ar"), ...}`` (49) for MLQARetrieval."""
    if task == "XQuADRetrieval":
        return {lang: (lang,) for lang in XQUAD_LANGS}
    if task == "MLQARetrieval":
        return {f"{ISO3[c]}-{ISO3[q]}": (c, q) for c in MLQA_LANGS for q in MLQA_LANGS}
    raise DataError(f"hbkit builds no MTEB task {task!r} offline; it builds {', '.join(TASKS)}")


def build_split(task: str, subset: str, data_dir: str | os.PathLike | None = None) -> dict:
    """The ``validation`` split of one subset of ``task`` (:func:`xquad_split` or :func:`mlqa_split`)."""
    args = subsets(task)
    if subset not in args:
        raise DataError(f"{task} has no subset {subset!r}; it has {', '.join(args)}")
    return (xquad_split if task == "XQuADRetrieval" else mlqa_split)(*args[subset], data_dir=data_dir)


def split_statistics(split: dict) -> dict:
    """What mteb's ``descriptive_stats`` record for a retrieval split: document and query counts and text lengths."""
    def texts(values) -> dict:
        lengths = [len(t) for t in values]
        return {"total_text_length": sum(lengths), "min_text_length": min(lengths),
                "average_text_length": sum(lengths) / len(lengths), "max_text_length": max(lengths),
                "unique_texts": len(set(values))}

    per_query = [len(v) for v in split["relevant_docs"].values()]
    return {"num_documents": len(split["corpus"]), "num_queries": len(split["queries"]),
            "documents_text_statistics": texts(list(split["corpus"].values())),
            "queries_text_statistics": texts(list(split["queries"].values())),
            "relevant_docs_statistics": {"num_relevant_docs": sum(per_query), "max_relevant_docs_per_query": max(per_query),
                                         "unique_relevant_docs": len({d for v in split["relevant_docs"].values() for d in v})}}


def offline_task(task: str, subsets_: list[str] | None = None, data_dir: str | os.PathLike | None = None):
    """mteb's own task object (its metadata, evaluator and scores), its data built here from the local releases.

    Args:
        task: ``XQuADRetrieval`` or ``MLQARetrieval``.
        subsets_: the subsets to keep (None: every one).
        data_dir: the releases' folder (None: hbkit's data rule).

    Returns:
        The ``mteb`` task, restricted to those subsets and to the ``validation`` split, with its data loaded.

    Examples:
        >>> t = offline_task("XQuADRetrieval", ["en", "de"])   # doctest: +SKIP
    """
    import mteb  # heavy: mteb (torch)
    from datasets import Dataset

    names = list(subsets(task)) if subsets_ is None else list(subsets_)
    built = {s: build_split(task, s, data_dir) for s in names}   # every refusal before mteb is touched
    base = type(mteb.get_task(task))

    class Offline(base):
        def load_data(self, *args, **kwargs):   # mteb's loader reads the hub; this one, the releases
            if self.data_loaded:
                return
            self.dataset = {s: {"validation": {
                "queries": Dataset.from_list([{"id": k, "text": v} for k, v in b["queries"].items()]),
                "corpus": Dataset.from_list([{"id": k, "text": v, "title": ""} for k, v in b["corpus"].items()]),
                "relevant_docs": b["relevant_docs"], "top_ranked": None}} for s, b in built.items()}
            self.data_loaded = True

    Offline.__name__ = base.__name__
    return Offline().filter_eval_splits(["validation"]).filter_languages(None, hf_subsets=names)


def model_identity(model, source: str) -> tuple[str, str]:
    """The name and revision mteb files a model's results under: a model hbkit trained is
    ``hbkit/<strategy>-a<α>-s<seed>``, any other keeps ``source`` (its hub id or path); the revision is always its
    content fingerprint (:func:`hbkit.encoders.load.fingerprint`), so two seeds, two strategies, a retrained model
    or the embedded copy of a hub model never share results (mteb would otherwise file a local model under its
    base model's name, and skip the tasks that name already has)."""
    from hbkit.core.vocab import STRATEGY_ALPHA
    from hbkit.encoders.load import fingerprint

    card = Path(source) / "hbkit_training.json"
    name = source
    if card.is_file():
        cfg = json.loads(card.read_text())["config"]
        alpha = cfg["alpha"] if cfg["strategy"] == "hybrid" else STRATEGY_ALPHA[cfg["strategy"]]
        name = f"hbkit/{cfg['strategy']}-a{alpha:g}-s{cfg['seed']}"
    return name, fingerprint(model)


def check_request(tasks: list[str], subsets_: dict[str, list[str]] | None) -> dict[str, list[str] | None]:
    """Every task and subset asked for exists (before any model loads)."""
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise DataError(f"--tasks {','.join(tasks)!r}: hbkit builds {', '.join(TASKS)} offline; name one or both")
    chosen = {}
    for t in tasks:
        want = (subsets_ or {}).get(t)
        bad = [s for s in want or [] if s not in subsets(t)]
        if bad:
            raise DataError(f"{t} has no subset {bad[0]!r}; it has {', '.join(subsets(t))}")
        chosen[t] = want
    return chosen


def run_mteb(model: str, tasks: list[str], out: str | os.PathLike, subsets_: dict[str, list[str]] | None = None,
             data_dir: str | os.PathLike | None = None, overwrite: bool = False, progress: bool = True):
    """Run mteb's evaluator on a trained or hub model, on tasks built offline from the local releases.

    Args:
        model: a model folder (``runs/x/models/hybrid-s0/model``) or a hub id (offline: its embedded copy).
        tasks: task names among :data:`TASKS`.
        out: the results folder: mteb's own result layout, ``<out>/results/<name>/<revision>/<task>.json``,
            plus ``<out>/mteb_scores.csv`` (one row per task, subset, split).
        subsets_: per task, the subsets to run (None: all of them).
        data_dir: the releases' folder (None: hbkit's data rule).
        overwrite: run again even where ``out`` holds this model's results (same name and revision).
        progress: show mteb's progress bars.

    Returns:
        A DataFrame: ``model, revision, task, subset, split, main_score, ndcg_at_10, recall_at_100, map_at_10``.

    Examples:
        >>> run_mteb("runs/cpu/models/hybrid-s0/model", ["XQuADRetrieval"], "runs/cpu/mteb")   # doctest: +SKIP
    """
    import mteb  # heavy: mteb (torch)
    import pandas as pd
    from mteb.cache import ResultCache
    from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper

    from hbkit.core.files import atomic_write_text
    from hbkit.encoders.load import load_encoder

    chosen = check_request(list(tasks), subsets_)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out}: a file, not a folder; name a folder for mteb's results")
    built = [offline_task(t, chosen[t], data_dir) for t in chosen]          # the data, before the model loads
    encoder = load_encoder(model)
    name, revision = model_identity(encoder, model)
    own = getattr(encoder, "prompts", None) or {}
    prompts = {"query": own["query"], "document": own["passage"]} if {"query", "passage"} <= set(own) else None
    wrapped = SentenceTransformerEncoderWrapper(encoder, model_prompts=prompts)
    wrapped.mteb_model_meta = wrapped.mteb_model_meta.model_copy(update={"name": name, "revision": revision})
    result = mteb.evaluate(wrapped, built, cache=ResultCache(out), show_progress_bar=progress,
                           overwrite_strategy="always" if overwrite else "only-missing")
    rows = [{"model": name, "revision": revision, "task": tr.task_name, "subset": s["hf_subset"], "split": split,
             "main_score": s["main_score"], "ndcg_at_10": s.get("ndcg_at_10"), "recall_at_100": s.get("recall_at_100"),
             "map_at_10": s.get("map_at_10")}
            for tr in result.task_results for split, scores in tr.scores.items() for s in scores]
    table = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "mteb_scores.csv", table.to_csv(index=False))
    return table
