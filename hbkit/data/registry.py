"""Languages, article splits and benchmark names: what hbkit knows by name, and the data errors."""

from __future__ import annotations

from typing import Iterable

#: ISO 639-1 codes of every language the releases use (XQuAD, MLQA, TyDi-QA, MIRACL).
LANGUAGES = {
    "ar": "Arabic",
    "bn": "Bengali",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "fa": "Persian",
    "fi": "Finnish",
    "fr": "French",
    "hi": "Hindi",
    "id": "Indonesian",
    "ja": "Japanese",
    "ko": "Korean",
    "ro": "Romanian",
    "ru": "Russian",
    "sw": "Swahili",
    "te": "Telugu",
    "th": "Thai",
    "tr": "Turkish",
    "vi": "Vietnamese",
    "yo": "Yoruba",
    "zh": "Chinese",
}


XQUAD_LANGS = ["ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh"]


XQUAD_R_LANGS = ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]


MLQA_LANGS = ["ar", "de", "en", "es", "hi", "vi", "zh"]


TYDIQA_LANGS = ["ar", "bn", "en", "fi", "id", "ko", "ru", "sw", "te"]


TYDI_NAMES = {
    "arabic": "ar",
    "bengali": "bn",
    "english": "en",
    "finnish": "fi",
    "indonesian": "id",
    "korean": "ko",
    "russian": "ru",
    "swahili": "sw",
    "telugu": "te",
}


#: Fixed, documented XQuAD article split: every 4th article (index 3, 7, ..., 47) is held out for
#: evaluation (12 articles), the other 36 are for training. Articles are whole Wikipedia pages, so
#: no paragraph, question or translation crosses the split.
EVAL_ARTICLES = tuple(range(3, 48, 4))


TRAIN_ARTICLES = tuple(i for i in range(48) if i not in EVAL_ARTICLES)


class DataError(ValueError):
    """A data file is missing, unreadable or malformed; the message names the file, the record and
    the fix."""


def check_languages(
    languages: Iterable[str] | str | None, available: list[str], dataset: str
) -> list[str]:
    """The requested languages (default: all of ``available``; a string is one code or a
    comma-separated list); a :class:`DataError` names the first one the dataset does not have (and
    says when it is not an ISO 639-1 code at all) or one given twice."""
    if isinstance(languages, str):
        languages = [l.strip() for l in languages.split(",") if l.strip()]
    languages = list(languages or available)
    twice = sorted({l for l in languages if languages.count(l) > 1})
    if twice:
        raise DataError(f"{dataset}: language {twice[0]!r} is given twice; list each language once")
    for lang in languages:
        if lang not in available:
            hint = "" if lang in LANGUAGES else f" ({lang!r} is not an ISO 639-1 code hbkit knows)"
            raise DataError(
                f"{dataset} has no language {lang!r}{hint}; it has {', '.join(available)}"
            )
    return languages


BENCHMARK_NAMES = ("xquad-r", "xquad-r-eval", "mlqa-r", "tydiqa", "mlqa-r-rebuilt")


CORPUS_FAMILIES = ("miracl", "tydiqa-corpus")


def check_benchmark_names(names: Iterable[str] | str) -> list[str]:
    """Validate benchmark names before any work: known, each once. A string is comma-separated; a
    corpus benchmark takes the language codes that follow it (``xquad-r,miracl:sw,te,yo,tydiqa`` is
    xquad-r, ``miracl:sw,te,yo`` and tydiqa)."""
    tokens = (
        [n.strip() for n in names.split(",")] if isinstance(names, str) else [str(n) for n in names]
    )
    out: list[str] = []
    for tok in (t for t in tokens if t):
        family = tok.partition(":")[0]
        if family in CORPUS_FAMILIES:
            out.append(tok)
        elif tok in BENCHMARK_NAMES:
            out.append(tok)
        elif out and out[-1].partition(":")[0] in CORPUS_FAMILIES and tok in LANGUAGES:
            out[-1] += ("," if ":" in out[-1] else ":") + tok
        else:
            raise DataError(
                f"unknown benchmark {tok!r}; known: {', '.join(BENCHMARK_NAMES)}, "
                f"or {' / '.join(CORPUS_FAMILIES)}:LANG[,LANG...]"
            )
    if not out:
        raise DataError("no benchmark given; use one or more of " + ", ".join(BENCHMARK_NAMES))
    twice = sorted({n for n in out if out.count(n) > 1})
    if twice:
        raise DataError(f"benchmark {twice[0]!r} is given twice; list each benchmark once")
    return out


def is_corpus_benchmark(name: str) -> bool:
    """Whether ``name`` is a corpus benchmark, searched with faiss: a spec (``miracl:sw,te``,
    ``tydiqa-corpus``) or the name of one of its languages in results (``miracl-sw``,
    ``tydiqa-corpus-te``). The one rule for it."""
    base = str(name).partition(":")[0]
    return base in CORPUS_FAMILIES or base.startswith(tuple(f + "-" for f in CORPUS_FAMILIES))


def non_parallel(benchmark: str) -> bool:
    """Whether pool benchmark ``benchmark`` has queries without translations (TyDi-QA: each question
    exists in one language), so that no alignment of parallel queries exists and claim A1 is
    measured by multilingual acc@1."""
    return benchmark == "tydiqa"


PASSAGES = ("sentence", "paragraph")
