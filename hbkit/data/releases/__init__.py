"""One reader per release, each in its own module: they read a release's files in its exact layout,
check every record and count what they skip.

* :mod:`~hbkit.data.releases.lareqa`: XQuAD-R and MLQA-R, LAReQA's release;
* :mod:`~hbkit.data.releases.mlqa`: MLQA-R rebuilt from MLQA dev (the fallback);
* :mod:`~hbkit.data.releases.tydiqa`: TyDi-QA GoldP dev as a pool;
* :mod:`~hbkit.data.releases.miracl`: MIRACL's topics, qrels and corpus;
* :mod:`~hbkit.data.releases.mmarco`: mMARCO's triples, queries and collections;
* :mod:`~hbkit.data.releases.squad`: SQuAD-format files (XQuAD, MLQA, TyDi-QA, translate-train);
* :mod:`~hbkit.data.releases.squadshifts`: SQuADShifts, the paper's validation set;
* :mod:`~hbkit.data.releases.translate_train`: SQuAD translate-train, the paper's training data.

Where their files come from is :mod:`hbkit.data.fetch`; the benchmarks by name are
:mod:`hbkit.data.benchmarks`.
"""
