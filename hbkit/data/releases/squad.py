"""One validated SQuAD-format reader and the sentence splitter."""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from hbkit.data.registry import DataError
from hbkit.data.textfile import read_json

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# validated SQuAD-format reading
# --------------------------------------------------------------------------------------------------
def _load_json(path: Path) -> dict:
    """A SQuAD-format file's JSON (:func:`hbkit.data.textfile.read_json`: a byte-order mark
    accepted, a non-UTF-8 byte or broken JSON named by line and column)."""
    if not path.is_file():
        raise DataError(
            f"{path}: file not found; check HBKIT_DATA_DIR or run `hbkit data download`"
        )
    obj = read_json(path, "SQuAD-format file")
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise DataError(
            f"{path}: expected a SQuAD-format object with a 'data' list at the top level"
        )
    return obj


def record_field(rec: dict, key: str, typ, path: Path, where: str):
    if not isinstance(rec, dict) or key not in rec:
        raise DataError(
            f"{path}: record {where} has no field {key!r}; the file is not in SQuAD format"
        )
    val = rec[key]
    if not isinstance(val, typ):
        raise DataError(
            f"{path}: record {where} field {key!r} is {type(val).__name__}, expected {typ.__name__}"
        )
    return val


@dataclass
class Question:
    """One usable SQuAD question: its id, text, first answer's offset, and where it sits in the
    file."""

    qid: str
    text: str
    answer_start: int
    article: int
    paragraph: int
    title: str = ""
    context: str = ""


def squad_questions(
    path: str | os.PathLike, skipped: Counter | dict | None = None, strict: bool = True
) -> Iterator[Question]:
    """Every usable question of one SQuAD-format file, in file order: the one SQuAD reader of hbkit.

    Args:
        path: a SQuAD v1.1-format JSON file (``{"data": [{"title", "paragraphs": [{"context",
            "qas"}]}]}``).
        skipped: a counter that receives, by reason, every question left out.
        strict: ``True`` for a benchmark (a released file hbkit evaluates on must be whole: a
            missing answer or an offset outside its context is a :class:`DataError` naming the
            record); ``False`` for a training corpus (machine-translated files carry such records:
            they are skipped and counted).

    Both policies raise :class:`DataError` for a file that is not SQuAD-format JSON (truncated,
    wrong structure) and skip and count an empty question. The lenient policy also skips and counts:
    no answer, ``answer_start`` outside the context, the answer text not at ``answer_start``, and an
    id seen before.

    Examples:
        >>> from collections import Counter
        >>> skipped = Counter()
        >>> qs = list(squad_questions("train-v1.1.json", skipped, strict=False))  # doctest: +SKIP
    """
    path = Path(path)
    return _questions(_load_json(path), path, Counter() if skipped is None else skipped, strict)


def _questions(obj: dict, path: Path, skipped, strict: bool) -> Iterator[Question]:
    seen: set[str] = set()

    def count(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    def skip(reason: str, message: str) -> None:
        if strict:
            raise DataError(f"{path}: {message}")
        count(reason)

    for a, art in enumerate(obj["data"]):
        title = str(art.get("title", a)) if isinstance(art, dict) else str(a)
        for p, para in enumerate(record_field(art, "paragraphs", list, path, f"data[{a}]")):
            where = f"data[{a}].paragraphs[{p}]"
            ctx = record_field(para, "context", str, path, where)
            for q, qa in enumerate(record_field(para, "qas", list, path, where)):
                w = f"{where}.qas[{q}]"
                qid = str(record_field(qa, "id", (str, int), path, w))
                w = f"{w} (id={qid})"
                if not strict:
                    if qid in seen:
                        count("duplicate id")
                        continue
                    seen.add(qid)
                if strict:
                    question = record_field(qa, "question", str, path, w)
                    answers = record_field(qa, "answers", list, path, w)
                else:
                    question, answers = qa.get("question"), qa.get("answers")
                if not isinstance(question, str) or not question.strip():
                    count("empty question")
                    if strict:
                        log.warning("%s: %s has an empty question; skipped", path, w)
                    continue
                if not isinstance(answers, list) or not answers or not isinstance(answers[0], dict):
                    skip("no answer", f"record {w} has an empty 'answers' list")
                    continue
                if strict:
                    start = record_field(answers[0], "answer_start", int, path, f"{w}.answers[0]")
                    text = answers[0].get("text")
                else:
                    start, text = answers[0].get("answer_start"), answers[0].get("text")
                    if (
                        not isinstance(start, int)
                        or isinstance(start, bool)
                        or not isinstance(text, str)
                        or not text
                    ):
                        skip("no answer", "")
                        continue
                if not 0 <= start < len(ctx):
                    skip(
                        "answer_start outside context",
                        f"record {w} answer_start={start} is outside its context "
                        f"(length {len(ctx)}); the file is corrupt",
                    )
                    continue
                if not strict and ctx[start : start + len(text)] != text:
                    skip("answer text not at answer_start", "")
                    continue
                yield Question(qid, question.strip(), start, a, p, title, ctx)


def read_squad(path: str | os.PathLike, skipped: dict[str, int] | None = None):
    """Read one SQuAD-format benchmark file, strictly (:func:`squad_questions` with
    ``strict=True``).

    Returns ``(paragraphs, questions)``: ``paragraphs[(article, paragraph)] = paragraph dict`` and a
    list of :class:`Question`. Raises :class:`DataError` naming the file and record for malformed
    JSON, a missing field or an answer offset outside its context. Questions with empty text are
    skipped and counted in ``skipped['empty question']``.
    """
    path = Path(path)
    obj = _load_json(path)
    questions = list(_questions(obj, path, skipped if skipped is not None else {}, strict=True))
    paragraphs = {
        (a, p): para
        for a, art in enumerate(obj["data"])
        for p, para in enumerate(art["paragraphs"])
    }
    return paragraphs, questions


def sentence_index(spans: list[tuple[int, int]], start: int) -> int:
    """Index of the sentence holding character ``start``: the first span whose end is past it."""
    for i, (b, e) in enumerate(spans):
        if start < e:
            return i
    return len(spans) - 1


@lru_cache(maxsize=32)
def _segmenter(lang: str):
    """pysbd's segmenter for ``lang``; languages pysbd has no rules for (vi, tr, th, id, fi, sw,
    te, ...) use its English rules, which split at Latin sentence punctuation (Thai writes none, so
    a Thai paragraph stays one sentence unless it holds such punctuation). Said once per language
    in the log."""
    import pysbd
    from pysbd.languages import LANGUAGE_CODES

    rules = lang if lang in LANGUAGE_CODES else "en"
    if rules != lang:
        log.info("pysbd has no sentence rules for %r: using its English rules", lang)
    return pysbd.Segmenter(language=rules, clean=False, char_span=True)


_CLAUSE_MARKS = (
    "\u060c",
    ",",
    "\u3001",
)  # Arabic comma, comma, ideographic comma: never end a sentence


def split_sentences(text: str, lang: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (pysbd, language-specific rules; see
    :func:`_segmenter`)."""
    spans: list[tuple[int, int]] = []
    for s in _segmenter(lang).segment(text):
        if spans and text[spans[-1][0] : spans[-1][1]].rstrip().endswith(_CLAUSE_MARKS):
            spans[-1] = (
                spans[-1][0],
                s.end,
            )  # pysbd's Arabic rules split at the Arabic comma: re-join
        else:
            spans.append((s.start, s.end))
    return [(b, e) for b, e in spans if text[b:e].strip()] or [(0, len(text))]
