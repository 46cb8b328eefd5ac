"""The smoke test of hbkit's declared dependency floors (``make test-floor``, in CI).

Run in an environment that holds exactly the lowest versions ``pyproject.toml`` declares
(``scripts/floor_constraints.py``), it walks the path a user's first hour takes, cheaply: import hbkit, sample a
hybrid batch, train 2 steps of the tiny encoder through hbkit's trainer and through a user's own
SentenceTransformerTrainer (``hbkit.st_training_kwargs``), evaluate on a subsample of XQuAD-R, draw the data
layer's counts with plotly and write them as markdown (tabulate), search with faiss, fit a small UMAP and import ipywidgets. It prints
the versions it ran with and exits non-zero at the first failure.

    python scripts/smoke.py            # HBKIT_DATA_DIR names the releases, as for make test
"""
import math
import sys
import tempfile
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "transformers", "sentence-transformers", "accelerate", "datasets", "huggingface-hub", "numpy",
            "pandas", "pyarrow", "scipy", "numba", "filelock", "tqdm", "platformdirs", "pysbd", "tabulate",
            "faiss-cpu", "umap-learn", "plotly", "ipywidgets")


def main() -> int:
    print("versions: " + ", ".join(f"{p} {metadata.version(p)}" for p in PACKAGES), flush=True)
    import hbkit
    from hbkit.experiment.plan import subsample_pairs

    pairs = subsample_pairs(hbkit.parallel_pairs(languages=["en", "de", "es"]), 40, 0)
    sampler = hbkit.HybridBatchSampler(pairs, 4, seed=0)
    batch = hbkit.describe_batch(sampler, pairs)
    assert len(batch) == 4 and batch.attrs["kind"], batch
    with tempfile.TemporaryDirectory() as tmp:
        cfg = hbkit.TrainConfig(strategy="hybrid", batch_size=4, max_steps=2, lr=1e-3, save_steps=2,
                                freeze_word_embeddings=False, seed=0)
        out = hbkit.train(hbkit.load_encoder("tiny"), pairs, cfg, Path(tmp) / "hybrid", progress=False)
        model = hbkit.load_encoder(str(out))
        bench = hbkit.load_benchmark("xquad-r-eval").subsample(20, seed=0)
        macro = hbkit.evaluate(model, bench).macro()
        value = float(macro[(macro.metric == "map") & (macro.setting == "multi")].value.iloc[0])
        assert math.isfinite(value) and 0 < value <= 1, macro

        from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

        own = hbkit.load_encoder("tiny")
        st = hbkit.st_training_kwargs("hybrid", 0.5, own, seed=0)
        args = SentenceTransformerTrainingArguments(str(Path(tmp) / "own"), per_device_train_batch_size=4,
                                                    max_steps=2, report_to="none", use_cpu=True,
                                                    save_strategy="no", disable_tqdm=True, **st.args)
        trainer = SentenceTransformerTrainer(model=own, args=args, train_dataset=pairs,
                                             loss=MultipleNegativesRankingLoss(own), **st.trainer)
        trainer.train()
        assert trainer.state.global_step == 2 and len(st.data_collator.seen) >= 2
    summary = hbkit.data_summary()
    figure = hbkit.figures.counts_bar(summary)
    assert len(figure.data) and summary.to_markdown(index=False)   # plotly; tabulate
    import faiss  # the search's, the dashboard's and the UMAP picture's libraries, at their floors
    import ipywidgets  # noqa: F401
    import numpy as np
    import umap

    points = np.random.default_rng(0).normal(size=(60, 8)).astype("float32")
    points /= np.linalg.norm(points, axis=1, keepdims=True)   # unit rows: each is its own nearest by cosine
    index = faiss.IndexFlatIP(8)
    index.add(points)
    assert (index.search(points[:3], 1)[1].ravel() == [0, 1, 2]).all()
    assert umap.UMAP(n_neighbors=5, n_jobs=1, random_state=0).fit_transform(points).shape == (60, 2)
    print(f"smoke: ok (batch {batch.attrs['kind']}, 2 steps twice, multilingual mAP {value:.3f} on 20 groups)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
