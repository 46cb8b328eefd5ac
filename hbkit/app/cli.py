"""Command line: parsing and validation of arguments; every command is then one call into the layers
below.

Options are derived from where their defaults live: ``hbkit train`` from
:class:`hbkit.train.config.TrainConfig`'s fields, ``hbkit compare`` from
:data:`hbkit.experiment.profiles.PROFILE_KEYS` (defaults: the chosen profile). Errors are one line
(``hbkit: error: ...``); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import re
import sys
from pathlib import Path

import pandas as pd

from hbkit.core.env import data_roots, low_memory
from hbkit.core.files import atomic_path, check_folder
from hbkit.data.benchmarks import load_benchmark
from hbkit.data.benchmarks import summary as data_summary
from hbkit.data.corpora import build_corpus, training_pairs, validation_pairs
from hbkit.data.corpus_benchmarks import load_corpus_benchmarks
from hbkit.data.fetch import PROJECT_DATA, download
from hbkit.data.registry import DataError, check_benchmark_names, is_corpus_benchmark
from hbkit.data.releases.mmarco import download_mmarco
from hbkit.data.releases.squadshifts import download_squadshifts
from hbkit.data.releases.translate_train import download_squad_translate_train
from hbkit.data.sources import SOURCES, sources_table
from hbkit.encoders.load import load_encoder
from hbkit.experiment.compare import compare
from hbkit.experiment.doctor import MISSING, doctor
from hbkit.experiment.grid import check_options
from hbkit.experiment.plan import subsample_pairs
from hbkit.experiment.profiles import PROFILE_KEYS, PROFILES, ProfileError
from hbkit.experiment.report import report, summary_text
from hbkit.retrieval.corpus_eval import evaluate_corpus
from hbkit.retrieval.mteb_tasks import check_request as check_mteb_request
from hbkit.retrieval.mteb_tasks import run_mteb
from hbkit.retrieval.pools import EvalResult, evaluate
from hbkit.train.config import TrainConfig
from hbkit.train.trainer import train


def _parse_list(kind, none_ok: bool = False):
    """A comma list of ``kind`` values; ``none`` (only where ``none_ok``) -> ``[]``, an explicit
    "none of them" that the profile reads as such (no extra α; all training languages), never as
    "keep the profile's". An empty value or an empty item (``0,,1``) is refused."""
    example = "0,1,2" if kind is int else "0.25,0.75" if kind is float else "a,b"

    def parse(text: str):
        if none_ok and text.strip().lower() == "none":
            return []
        items = [x.strip() for x in text.split(",")]
        if not text.strip() or any(not x for x in items):
            raise argparse.ArgumentTypeError(
                f"{text!r}: an empty value; give comma-separated {kind.__name__} values, "
                f"e.g. {example}"
                + (", or none" if none_ok else "")
                + " (leave the option out for the profile's)"
            )
        try:
            return [kind(x) for x in items]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r}: give comma-separated {kind.__name__} values, e.g. {example}"
            ) from None

    return parse


def _json_object(text: str) -> dict:
    """A JSON object option (``--training-args '{"warmup_ratio": 0.2}'``)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not valid JSON ({e.msg} at column {e.colno}); give a JSON object "
            "in single quotes, e.g. '{\"gradient_accumulation_steps\": 4}'"
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"{text!r} is JSON but not an object; give one, e.g. "
            "'{\"gradient_accumulation_steps\": 4}'"
        )
    return value


def _parse_dict(text: str):
    if text.lower() in ("none", "", "full"):
        return {}
    out = {}
    for item in text.split(","):
        name, sep, n = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(
                f"{item!r}: use name=number, e.g. xquad-r-eval=120,mlqa-r=150"
            )
        if name.strip() in out:
            raise argparse.ArgumentTypeError(
                f"{name.strip()!r} is given twice in {text!r}; give each benchmark once"
            )
        try:
            out[name.strip()] = int(n)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{item!r}: {n!r} is not a whole number of query groups; use "
                "name=number, e.g. mlqa-r=150"
            ) from None
    return out


def _parse_text_dict(text: str):
    """``query=Query: ,passage=Passage: `` -> ``{"query": "Query: ", "passage": "Passage: "}``
    (values verbatim, trailing spaces kept); ``none`` -> ``{}``, which the profile reads as "no
    prefixes" (None keeps the profile's)."""
    if text.strip().lower() in ("none", ""):
        return {}
    out = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise argparse.ArgumentTypeError(
                f"{item!r}: use name=text, e.g. 'query=Query: ,passage=Passage: '"
            )
        out[name.strip()] = value
    return out


def _parse_optional(kind):
    return lambda text: None if text.lower() == "none" else kind(text)


_TYPES = {
    "str": str,
    "int": int,
    "float": float,
    "list[str]": _parse_list(str),
    "list[int]": _parse_list(int),
    "list[float]": _parse_list(float, none_ok=True),
    "dict[int]": _parse_dict,
    "int?": _parse_optional(int),
    "dict[str]?": _parse_text_dict,
    "list[str]?": _parse_list(str, none_ok=True),
}


def _add_dataclass_options(parser, cls, skip=()) -> None:
    """One option per dataclass field (``--max-steps``; aliases from the field's metadata); the
    default is the field's, the help its ``metadata['help']`` — as transformers' HfArgumentParser
    does."""
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        names = [f"--{f.name.replace('_', '-')}", *f.metadata.get("aliases", ())]
        kw = {
            "dest": f.name,
            "default": default,
            "help": f"{f.metadata.get('help', '')} (default: {default})",
        }
        t = str(f.type)
        if "bool" in t:
            kw["action"] = argparse.BooleanOptionalAction
        elif "dict" in t:
            kw["type"] = _json_object
        else:
            base = int if "int" in t else float if "float" in t else str
            kw["type"] = _parse_optional(base) if "None" in t else base
            if "choices" in f.metadata:
                kw["choices"] = f.metadata["choices"]
        parser.add_argument(*names, **kw)


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(
            f"{n}: must be a positive number (leave the option out for the full set)"
        )
    return n


#: one help text for every --data-dir that reads releases (the rule:
#: hbkit.core.env.default_data_roots)
DATA_DIR_HELP = (
    "the folder of the releases, laid out like data/README.md (default: $HBKIT_DATA_DIR, else "
    "../shared/data beside the checkout, else data/, else a download)"
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hbkit",
        description="Hybrid batch training for multilingual retrieval",
        allow_abbrev=False,
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    _add = sub.add_parser
    # --debug after the command, too
    sub.add_parser = lambda *args, **kw: _add(*args, parents=[common], **kw)

    d = sub.add_parser(
        "data",
        help="data layer: summary, sources, download, or build a training corpus",
        allow_abbrev=False,
    )
    d.add_argument("action", choices=["summary", "sources", "download", "build"])
    d.add_argument(
        "names",
        nargs="*",
        help="download: releases (default: xquad xquad-r mlqa-r tydiqa; also "
        "squad-translate-train, squadshifts, mmarco); build: one corpus "
        "(squad-translate-train, xquad-train)",
    )
    d.add_argument(
        "--languages",
        help="download: languages of squad-translate-train or mmarco (e.g. en,de,zh), or "
        "domains of squadshifts (e.g. new_wiki,nyt); default: all",
    )
    d.add_argument(
        "--data-dir", help="folder laid out like data/README.md (download: where to write)"
    )
    d.add_argument(
        "--dir",
        help="build: the release folder (e.g. one holding train-v1.1.json and translate-train/)",
    )
    d.add_argument("--num-proc", type=_positive, help="build: processes for sentence splitting")

    c = sub.add_parser(
        "compare",
        help="train every strategy (x α x seed) from one base encoder, evaluate, report",
        description="The main job: train every strategy of the profile (X-X-mono, X-Y, hybrid; "
        "x α x seed) from one base encoder, evaluate each model zero-shot, and write "
        "the tables, verdicts and report.html into --out. A folder that holds some "
        "of the results is resumed: what is done is reused.",
        allow_abbrev=False,
    )
    c.add_argument(
        "--profile",
        default="auto",
        help=f"{' | '.join(PROFILES)} | auto (see help(hbkit.profile): $HBKIT_PROFILE, else paper "
        "on CUDA, else cpu)",
    )
    c.add_argument(
        "--out",
        default=None,
        help="run folder (default: runs/<profile>, shared with the notebooks and the dashboard)",
    )
    c.add_argument(
        "--force", action="store_true", help="retrain and re-evaluate everything in --out"
    )
    c.add_argument("--data-dir", help=DATA_DIR_HELP)
    c.add_argument(
        "--allow-overlap",
        action="store_true",
        help="run even if training questions occur in an evaluation benchmark (see overlap.csv)",
    )
    c.add_argument(
        "--devices",
        default=None,
        help="one worker per device, each taking models of the plan: cuda:0,cuda:1,... or cpu,cpu "
        "(default: every visible GPU when there are two or more, else this process alone)",
    )
    c.add_argument(
        "--shard",
        default=None,
        metavar="i/N",
        help="only the models of shard i of N (model k when k %% N == i), for a job array into one "
        "--out: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT; the last task to finish "
        "aggregates",
    )
    for key, (kind, help_) in PROFILE_KEYS.items():
        opt = f"--{key.replace('_', '-')}"
        if kind == "bool":
            c.add_argument(
                opt, dest=key, action=argparse.BooleanOptionalAction, default=None, help=help_
            )
        else:
            c.add_argument(
                opt,
                dest=key,
                type=_TYPES[kind],
                default=None,
                help=f"{help_} (default: the profile's)",
            )

    r = sub.add_parser(
        "report",
        help="re-render tables, verdicts and report.html of a finished compare folder",
        allow_abbrev=False,
    )
    r.add_argument("run_dir")

    t = sub.add_parser(
        "train",
        help="fine-tune one strategy on one training corpus (--corpus; default: the XQuAD "
        "training articles)",
        allow_abbrev=False,
    )
    t.add_argument("--model", default="intfloat/multilingual-e5-small")
    _add_dataclass_options(t, TrainConfig)
    t.add_argument(
        "--max-groups", type=_positive, help="train on a seeded subset of this many parallel groups"
    )
    t.add_argument(
        "--no-resume", action="store_true", help="start afresh even if the folder holds a run"
    )
    t.add_argument("--out", default="runs/train")
    t.add_argument("--data-dir", help=DATA_DIR_HELP)

    dr = sub.add_parser(
        "doctor",
        help="preflight of a profile: data, encoder, disk, CUDA; exits 1 when something "
        "the run needs is missing",
        allow_abbrev=False,
    )
    dr.add_argument("--profile", default="auto")
    dr.add_argument("--data-dir", help=DATA_DIR_HELP)
    dr.add_argument(
        "--out", default=None, help="the run folder to check the disk for (default: runs/<profile>)"
    )

    e = sub.add_parser("eval", help="evaluate an encoder zero-shot", allow_abbrev=False)
    e.add_argument("--model", default="intfloat/multilingual-e5-small")
    e.add_argument(
        "--bench",
        default="xquad-r,mlqa-r,tydiqa",
        help="comma-separated: xquad-r, xquad-r-eval, mlqa-r, tydiqa, mlqa-r-rebuilt, and corpus "
        "benchmarks "
        "searched with faiss: miracl:LANG[,LANG...] (release folder under $HBKIT_DATA_DIR/miracl), "
        "tydiqa-corpus[:LANG,...] (TyDi-QA GoldP as a MIRACL-style corpus)",
    )
    e.add_argument(
        "--index",
        default="flat",
        choices=["flat", "ivf", "hnsw"],
        help="faiss index of corpus benchmarks",
    )
    e.add_argument(
        "--unknown-docs",
        default="error",
        choices=["error", "skip"],
        help="corpus benchmarks: qrels naming a document the corpus lacks are refused (error) or "
        "dropped and counted (skip)",
    )
    e.add_argument(
        "--groups", type=_positive, help="subsample this many query groups per benchmark"
    )
    e.add_argument("--out", default="runs/eval")
    e.add_argument(
        "--save-embeddings",
        action="store_true",
        help="also write what was scored (.npy, ids, relevance)",
    )
    e.add_argument("--data-dir", help=DATA_DIR_HELP)

    m = sub.add_parser(
        "mteb",
        help="run mteb's evaluator on a trained or hub model, on MTEB tasks built offline from "
        "the local releases (XQuADRetrieval, MLQARetrieval)",
        allow_abbrev=False,
    )
    m.add_argument(
        "--model",
        default="intfloat/multilingual-e5-small",
        help="a model folder (runs/x/models/hybrid-s0/model) or a hub id (offline: its embedded "
        "copy)",
    )
    m.add_argument(
        "--tasks",
        default="XQuADRetrieval,MLQARetrieval",
        help="comma-separated: XQuADRetrieval, MLQARetrieval, and hbkit's pooled settings as mteb "
        "tasks, <benchmark>:<setting> (xquad-r, xquad-r-eval, mlqa-r x mono, cross, multi)",
    )
    m.add_argument(
        "--subsets",
        default=None,
        help="TASK=SUB,SUB;TASK=SUB... to run only those subsets (default: every one), e.g. "
        "'XQuADRetrieval=en,de;MLQARetrieval=zho-ara'",
    )
    m.add_argument(
        "--out",
        default="runs/mteb",
        help="the results folder: mteb's own layout (results/<name>/<revision>/<task>.json) and "
        "mteb_scores.csv; a model's name and revision are its own, so results never collide",
    )
    m.add_argument(
        "--overwrite", action="store_true", help="run again where --out holds this model's results"
    )
    m.add_argument("--data-dir", help=DATA_DIR_HELP)
    return p


def _subsets_option(value: str | None) -> dict[str, list[str]] | None:
    """``--subsets 'T=a,b;U=c'`` -> ``{"T": ["a", "b"], "U": ["c"]}``; a malformed part is named."""
    if value is None:
        return None
    out = {}
    for part in filter(None, (x.strip() for x in value.split(";"))):
        task, eq, subs = part.partition("=")
        names = [x.strip() for x in subs.split(",") if x.strip()]
        if not eq or not task.strip() or not names:
            raise ValueError(
                f"--subsets part {part!r}: write TASK=SUB,SUB (parts joined by ;), e.g. "
                "XQuADRetrieval=en,de"
            )
        out[task.strip()] = names
    return out


def _mteb(a) -> int:
    table = run_mteb(
        a.model, a.mteb_tasks, a.out, a.mteb_subsets, data_dir=a.data_dir, overwrite=a.overwrite
    )
    print(table[["model", "task", "subset", "split", "ndcg_at_10"]].to_string(index=False))
    print(
        f"mteb's results: {Path(a.out) / 'results'}; the table: {Path(a.out) / 'mteb_scores.csv'}"
    )
    return 0


#: the downloads beyond the benchmark releases: (folder under the data folder, languages or domains)
#: -> where
EXTRA_DOWNLOADS = {
    "squad-translate-train": download_squad_translate_train,
    "squadshifts": download_squadshifts,
    "mmarco": download_mmarco,
}


def _data(a) -> int:
    if a.action == "build":
        if len(a.names) != 1:
            raise DataError(
                "hbkit data build takes one corpus name, e.g. squad-translate-train --dir FOLDER"
            )
        path, stats = build_corpus(a.names[0], a.dir, num_proc=a.num_proc)
        with pd.option_context(
            "display.max_rows", 50, "display.width", 160, "display.max_columns", 20
        ):
            print(stats.to_string(index=False))
        print(f"\ncached at {path}")
        return 0
    if a.action == "sources":
        print(sources_table().to_markdown(index=False))
        return 0
    if a.action == "download":
        a.names = a.names or ["xquad", "xquad-r", "mlqa-r", "tydiqa"]
        known = [*SOURCES, *EXTRA_DOWNLOADS]
        for n in a.names:  # every name is checked before the first download
            if n not in known:
                raise DataError(f"unknown dataset {n!r}; known: {', '.join(known)}")
        # where the loaders look first
        root = next((r for _, r in data_roots(a.data_dir)), PROJECT_DATA)
        for n in a.names:
            if n in EXTRA_DOWNLOADS:
                print(EXTRA_DOWNLOADS[n](root / n, a.languages))
            else:
                print(download(n, root))
        return 0
    with pd.option_context("display.max_rows", 200, "display.width", 120):
        s = data_summary(a.data_dir)
        print(s.to_string(index=False))
        print(s.groupby("dataset")[["queries", "candidates"]].sum().to_string())
    return 0


def _as_options(e: ValueError, names) -> ValueError:
    """``e`` with each ``name=`` of a setting in ``names`` written as its command-line option
    (``seed=-1`` -> ``--seed -1``), for a refusal of the profile's or TrainConfig's checks."""
    msg = re.sub(
        r"(?<![\w-])([a-z_]+)=",
        lambda m: f"--{m.group(1).replace('_', '-')} " if m.group(1) in names else m.group(0),
        str(e),
    )
    return type(e)(msg)


def _compare(a) -> int:
    try:
        res = compare(
            a.profile,
            a.out,
            a.force,
            a.data_dir,
            allow_overlap=a.allow_overlap,
            devices=a.devices,
            shard=a.shard,
            **{k: getattr(a, k) for k in PROFILE_KEYS},
        )
    except (
        ProfileError
    ) as e:  # the profile's checks run first, before any work: named by their option
        raise _as_options(e, PROFILE_KEYS) from None
    print(summary_text(res))
    return 0


def _report(a) -> int:
    print(summary_text(report(a.run_dir)))
    return 0


def _doctor(a) -> int:
    t = doctor(a.profile, a.data_dir, a.out)
    with pd.option_context("display.max_colwidth", 120, "display.width", 250):
        print(t.to_string(index=False))
    bad = t[t.status == MISSING]
    print(
        f"\nnot ready: {len(bad)} missing ({', '.join(bad.check)}); each row's fix says what to do"
        if len(bad)
        else "\nready: nothing the run needs is missing"
    )
    return 1 if len(bad) else 0


def _train(a) -> int:
    cfg = a.config  # built and checked by validate()
    pairs = training_pairs(cfg.corpus, a.data_dir)  # read and validated before any model is loaded
    if a.max_groups:
        pairs = subsample_pairs(pairs, a.max_groups, cfg.seed)
    # squadshifts or a pairs file; None: held-out groups
    val = validation_pairs(cfg.val_corpus, a.data_dir)
    enc = load_encoder(a.model)
    print(train(enc, pairs, cfg, a.out, resume=not a.no_resume, val_pairs=val))
    return 0


def _eval(a) -> int:
    names = check_benchmark_names(a.bench)
    # every benchmark loads before any is scored: a missing file fails in seconds, not after an hour
    pools = [load_benchmark(n, a.data_dir) for n in names if not is_corpus_benchmark(n)]
    corpora = [
        b for n in names if is_corpus_benchmark(n) for b in load_corpus_benchmarks(n, a.data_dir)
    ]
    if a.groups:
        pools = [b.subsample(a.groups) for b in pools]
    enc = load_encoder(a.model)
    out = Path(a.out)
    res = [evaluate(enc, b, save_dir=out / "scored" if a.save_embeddings else None) for b in pools]
    if corpora:
        table, pq = evaluate_corpus(
            enc,
            corpora,
            out / "corpus",
            index=a.index,
            data_dir=a.data_dir,
            unknown_docs=a.unknown_docs,
        )
        for name, why in table.attrs.get("skipped", {}).items():
            for reason, n in why.items():
                print(f"{name}: {n} {reason}", file=sys.stderr)
        res.append(EvalResult(table, pq))
    r = EvalResult.concat(res)
    with atomic_path(out / "results.csv") as tmp:
        r.table.to_csv(tmp, index=False)
    r.to_json(out / "results.json")
    # the macro rows, and each corpus benchmark's language (one language has no macro row)
    t = r.table
    t = t[
        ((t.qlang == "all") & (t.dlang == "all"))
        | (t.benchmark.map(is_corpus_benchmark) & (t.qlang != "all"))
    ]
    t = t[t.metric.isin(["map", "rank_distance", "acc@10", "ndcg@10", "recall@100", "mrr@10"])]
    print(
        t.pivot_table(
            index=["benchmark", "metric"], columns="setting", values="value", sort=False
        ).to_string(float_format="%.4f")
        if len(t)
        else "no metrics: nothing was evaluated"
    )
    print(f"written to {out / 'results.csv'}")
    return 0


COMMANDS = {
    "data": _data,
    "compare": _compare,
    "report": _report,
    "doctor": _doctor,
    "train": _train,
    "eval": _eval,
    "mteb": _mteb,
}


def validate(a) -> None:
    """The one argument-validation pass, before any command reads or writes anything: the folders a
    command was given (``--data-dir``, ``--dir``, ``--out``) and, for ``hbkit train``, the training
    config. A refusal leaves every folder as it was."""
    if a.cmd in ("compare", "train"):
        low_memory()  # HBKIT_LOW_MEMORY: a bad value refused, 1 applied
    if getattr(a, "data_dir", None) is not None:
        data_roots(a.data_dir)  # empty, or a file: refused
    if getattr(a, "dir", None) is not None:
        if not str(a.dir).strip() or not Path(a.dir).expanduser().is_dir():
            raise DataError(
                f"--dir {a.dir!r} is not a folder: name the release folder (e.g. the one holding "
                "train-v1.1.json and translate-train/)"
            )
    if getattr(a, "out", None) is not None:
        check_folder(a.out, "--out")
    if a.cmd == "compare":
        check_options(a.devices, a.shard, a.force)
    if a.cmd == "mteb":
        a.mteb_tasks, a.mteb_subsets = (
            [t.strip() for t in a.tasks.split(",") if t.strip()],
            _subsets_option(a.subsets),
        )
        check_mteb_request(a.mteb_tasks, a.mteb_subsets)
    if a.cmd == "train":
        if a.max_groups is not None and a.max_groups < 2:
            raise ValueError(f"--max-groups {a.max_groups}: must be at least 2 groups")
        a.config = train_config(a)


def train_config(a) -> TrainConfig:
    """``hbkit train``'s :class:`TrainConfig` from its options; a refused value is named by its
    option (``--seed -1``), not by the field."""
    try:
        return TrainConfig(**{f.name: getattr(a, f.name) for f in dataclasses.fields(TrainConfig)})
    except ValueError as e:
        raise _as_options(e, {f.name for f in dataclasses.fields(TrainConfig)}) from None


def run(a) -> int:
    """Run the parsed command ``a.cmd`` after :func:`validate`; returns the process exit status."""
    validate(a)
    command = COMMANDS.get(a.cmd)
    return command(a) if command else 1


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    import signal

    # SIGTERM (kill, a scheduler's time limit) unwinds like an exception, so temporary files are
    # removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(a)
    except KeyboardInterrupt:
        print(
            "hbkit: interrupted. Rerun the same command to resume: every finished model and result "
            "file is kept, and a model in training resumes from its last checkpoint (the steps "
            "since it are trained again)"
            if a.cmd in ("compare", "train")
            else "hbkit: interrupted",
            file=sys.stderr,
        )
        return 130
    except Exception as e:  # noqa: BLE001 - one line for the user; --debug for the traceback
        if a.debug:
            raise
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(
            f"hbkit: error: {msg}"
            + ("" if isinstance(e, ValueError) else f" ({type(e).__name__}; --debug for details)"),
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
