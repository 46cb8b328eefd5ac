"""Small fixture files in the exact release layouts of the paper's training and validation data (mMARCO on the hub,
SQuADShifts from its authors), written by the tests; the real files exist only online."""
import hashlib
import json
import random

from hbkit.data.sources import HUB_SOURCES, MMARCO_LANGS, SQUADSHIFTS

TRIPLES, QUERIES, COLLECTION = HUB_SOURCES["mmarco"]["files"]

TOPICS = ["river", "city", "mountain", "lake", "forest", "bridge", "castle", "harbour", "valley", "island", "desert",
          "glacier"]


def write_mmarco(root, langs=("en", "de", "es"), n_queries=60, drop=None):
    """mMARCO's hub layout under ``root``: the training triples (qid, positive pid, negative pid; several triples per
    query, as in the release), and per language the train queries and the collection, each in its own shuffled
    order (the release's languages differ in order: only ids join them). ``drop={lang: qid}`` leaves one query out
    of a language's file. Returns ``{qid: positive pid}``."""
    rng = random.Random(0)
    qids = [str(1000 + 7 * i) for i in range(n_queries)]
    pos = {q: str(50000 + 3 * i) for i, q in enumerate(qids)}
    negs = [str(90000 + i) for i in range(40)]
    lines = []
    for q in qids:
        for _ in range(3):
            lines.append(f"{q}\t{pos[q]}\t{rng.choice(negs)}\n")
    rng.shuffle(lines)
    (root / TRIPLES).parent.mkdir(parents=True, exist_ok=True)
    (root / TRIPLES).write_text("".join(lines))
    for lang in langs:
        name = MMARCO_LANGS[lang]
        qlines = [f"{q}\t{lang} question {i} about the {TOPICS[i % len(TOPICS)]} number {q}?\n"
                  for i, q in enumerate(qids) if not (drop and drop.get(lang) == q)]
        plines = [f"{p}\t{lang} passage {i}: the {TOPICS[i % len(TOPICS)]} number {q} is described here.\n"
                  for i, (q, p) in enumerate(pos.items())] + [f"{n}\t{lang} negative passage {n}.\n" for n in negs]
        random.Random(lang).shuffle(qlines)
        random.Random(lang + "p").shuffle(plines)
        for rel, body in ((QUERIES.format(name=name), qlines), (COLLECTION.format(name=name), plines)):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text("".join(body), encoding="utf-8")
    return pos


def write_squadshifts(folder, per_domain=30):
    """The four SQuADShifts files in the authors' layout (version "1.0", a ``split`` key per article, contexts that
    end with a newline and one that starts with spaces, as new_wiki's do)."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, (d, (fname, *_)) in enumerate(SQUADSHIFTS["files"].items()):
        arts = []
        for a in range(per_domain // 3):
            paras = []
            for p in range(3):
                i = 100 * k + a * 3 + p   # distinct across domains: no two questions share an answer sentence
                lead = "  " if i == 0 else ""
                ctx = (f"{lead}The {TOPICS[i % len(TOPICS)]} of {d} story {i} is long. It was built in {1800 + i}. "
                       f"People visit it every summer.\n")
                ans = str(1800 + i)
                qa = {"question": f" When was the {TOPICS[i % len(TOPICS)]} of {d} story {i} built? ",
                      "id": hashlib.md5(f"{d}{i}".encode()).hexdigest()[:24], "answers": [{"text": ans, "answer_start": ctx.index(ans)}]}
                paras.append({"context": ctx, "qas": [qa]})
            arts.append({"title": f"{d}_article_{a}", "paragraphs": paras, "split": d})
        (folder / fname).write_text(json.dumps({"data": arts, "version": "1.0"}))
    return folder
