"""Writes the notebook series (outputs cleared). Edit here, run `python notebooks/build_notebooks.py`.

The notebooks are narratives over hbkit: every computation is a call into the package.
"""
from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).parent
#: papermill's parameters cell (tagged ``parameters``): ``papermill 03_training_strategies.ipynb out.ipynb -p PROFILE cpu``
PARAMETERS = ("import os\n"
              "PROFILE = os.environ.get('HBKIT_PROFILE', 'auto')  # ci in CI; auto: see help(hbkit.profile)\n"
              "RUN = None     # the run folder; None: the profile's shared folder runs/<profile>, which `make run` fills too\n"
              "SEEDS = None   # training seeds, e.g. [0, 1, 2]; None: the profile's\n"
              "ALPHAS = None  # extra hybrid α values, e.g. [0.25, 0.75]; None: the profile's")
SETUP = ("import hbkit\n"
         "cfg = hbkit.profile(PROFILE, seeds=SEEDS, alphas=ALPHAS)\n"
         "RUN = str(RUN or hbkit.default_run_dir(cfg['profile']))  # shared by make run, notebooks 3-6 and the dashboard\n"
         "print(f\"profile {cfg['profile']} · model {cfg['model']} · run folder {RUN}\")")


def write(name, cells):
    nb = nbf.v4.new_notebook()
    nb.cells = [nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src) for kind, src in cells]
    for cell, (kind, src) in zip(nb.cells, cells):
        if src == PARAMETERS:
            cell.metadata["tags"] = ["parameters"]
    for i, cell in enumerate(nb.cells):  # stable ids: rebuilding leaves unchanged notebooks byte-identical
        cell.id = f"{name.split('_')[0]}-{i:02d}"
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbf.write(nb, HERE / name)


write("01_quickstart.ipynb", [
    ("md", "# 1 · Quick start\nLoad the default encoder (multilingual-e5-small; the embedded offline copy when the hub is unreachable), "
           "one benchmark, one retrieval and one alignment number. Sizes follow `HBKIT_PROFILE`."),
    ("code", PARAMETERS),
    ("code", SETUP),
    ("md", "What the comparison of this profile (notebooks 3-6, and `make run`, which writes the same folder) still has to do, "
           "and what that costs on this machine: models to go × minutes per model as measured by the last run of this profile."),
    ("code", "st = hbkit.plan_status(cfg, RUN)\n"
             "a = st.attrs\nprint(f\"{a['to_run']} of {len(st)} models to train or evaluate in {RUN}\" + (\n"
             "    f\"; about {a['estimate_minutes']:.0f} min ({a['minutes_per_model']} min per model, measured in {a['measured_in']})\"\n"
             "    if a['estimate_minutes'] is not None else \"; nothing measured for this profile yet\")\n"
             "    + f\"; about {a['disk_gib']} GiB of disk for the models to train\")\n"
             "st.groupby('model').done.agg(['sum', 'size']).rename(columns={'sum': 'done', 'size': 'planned'})"),
    ("code", "encoder = hbkit.load_encoder(cfg['model'])\n"
             "bench = hbkit.load_benchmark('xquad-r-eval').subsample(cfg['eval_groups'].get('xquad-r-eval') or 50, seed=0)\nbench"),
    ("md", "One query and its top-5 candidates in the multilingual pool (all 11 languages); `relevant` marks the answer sentence in any language:"),
    ("code", "import numpy as np\n"
             "q = bench.queries.iloc[0]\nQ = hbkit.encode(encoder, [q.text], 'query')\nC = hbkit.encode(encoder, bench.candidates.text.tolist(), 'passage')\n"
             "top = np.argsort(-(C @ Q[0]))[:5]\nprint(q.lang, '|', q.text)\n"
             "bench.candidates.iloc[top][['lang', 'text']].assign(relevant=bench.candidates.iloc[top].id.isin(bench.relevance[q.id]).values)"),
    ("md", "mAP in the three settings (macro averages), and one alignment number: the cosine gap between parallel and non-parallel questions."),
    ("code", "res = hbkit.evaluate(encoder, bench)\nm = res.macro()\nm[m.metric.isin(['map', 'rank_distance'])].pivot_table(index='metric', columns='setting', values='value')"),
    ("code", "al = hbkit.evaluate_alignment(encoder, bench, progress=True)\nal[(al.qlang == 'all') & al.metric.isin(['cos_gap', 'translation_p@1', 'lang_knn_purity'])][['metric', 'value']]"),
])

write("02_data.ipynb", [
    ("md", "# 2 · Data\nXQuAD is 11-way parallel: the same question in every language shares one id (a *group*). XQuAD-R and MLQA-R "
           "turn the QA sets into sentence retrieval (LAReQA): every sentence is a candidate, the answer sentence in *every* "
           "language is relevant. TyDi-QA passages are not parallel. Counts per dataset and language:"),
    ("code", PARAMETERS),
    ("code", SETUP),
    ("code", "viz = hbkit.figures\nsummary = hbkit.data_summary()\nsummary.pivot_table(index='lang', columns='dataset', values='queries', fill_value=0)"),
    ("code", "viz.counts_bar(summary)"),
    ("md", "One parallel group of XQuAD-R: the same question in 11 languages, and its 11 relevant sentences."),
    ("code", "x = hbkit.load_benchmark('xquad-r-eval')\ng = x.queries.group.iloc[0]\nq = x.queries[x.queries.group == g]\n"
             "rel = x.candidates.set_index('id').loc[x.relevance[q.id.iloc[0]], ['lang', 'text']]\nq[['lang', 'text']].head(11)"),
    ("code", "rel"),
    ("md", "MLQA-R is 2-4 way parallel (questions exist in some languages only). hbkit reads LAReQA's own release "
           "(`mlqa-r/<lang>.json` with `sentence_breaks`): 4,199 questions and 20,534 candidate sentences, the set the paper "
           "evaluates on. Relevant answers per question (one per language that has it):"),
    ("code", "m = hbkit.load_benchmark('mlqa-r')\nprint(len(m.queries), 'questions,', len(m.candidates), 'candidates')\n"
             "import collections\ncollections.Counter(len(r) for r in m.relevance.values())"),
    ("md", "Training uses the 36 XQuAD training articles; the 12 held-out articles (`xquad-r-eval`) share no group with them:"),
    ("code", "pairs = hbkit.parallel_pairs()\nhbkit.check_disjoint(pairs['group'], x)\nlen(set(pairs['group'])), x.queries.group.nunique()"),
])

write("03_training_strategies.ipynb", [
    ("md", "# 3 · Training strategies\nWhat X-X-mono, X-Y and hybrid batches look like — real batches from the samplers — then every "
           "strategy trained from the same base with the same data and steps, once per training seed (the `gpu` profile on a GPU, "
           "else `cpu`; CI: `ci`). In no batch is a translation of a positive a negative: pairs that share an answer are never batched together."),
    ("code", PARAMETERS),
    ("code", SETUP),
    ("code", "pairs = hbkit.parallel_pairs()\n"
             "b = hbkit.describe_batch(hbkit.XXMonoBatchSampler(pairs, 8, seed=0), pairs, n=5)\nprint(b.attrs['kind'])\nb"),
    ("code", "b = hbkit.describe_batch(hbkit.XYBatchSampler(pairs, 8, seed=0), pairs, n=5)\nprint(b.attrs['kind'])\nb"),
    ("code", "import pandas as pd\nh = hbkit.HybridBatchSampler(pairs, 8, seed=0, alpha=0.5)\npd.Series([x.kind for x in h.plan()]).value_counts()"),
    ("md", "Train and evaluate every strategy once per training seed of the profile (`cfg['seeds']`; the ci profile has two; "
           "re-running reuses the saved models; `force=True` redoes). "
           "Every model of every seed is scored on the same queries; the table gives the mean over seeds and a 95% interval "
           "that covers both the training seeds and the sampling of queries:"),
    ("code", "res = hbkit.compare(cfg['profile'], out=RUN, seeds=cfg['seeds'], alphas=cfg['alphas'])  # progress: models, steps, ETA\n"
             "print('training seeds:', cfg['seeds'])\nres['table']"),
    ("code", "hbkit.figures.loss_curves(RUN)"),
    ("md", "Paired effects between strategies, decided by a strategy-level test: a crossed random-effects model in which the "
           "training seed and the answer cluster are both random, so a new seed's variation is in the null. `df` are its "
           "Satterthwaite degrees of freedom (with 3 seeds often about 2), `mde` the smallest effect it detects with 80% power, "
           "`seed_share` how much of the uncertainty comes from training seeds, `seeds_agree` how many seeds have the sign of the "
           "mean; `p_adj` is Benjamini-Hochberg within the claims' family."),
    ("code", "e = res['effects']\ne[(e.metric == 'map') & (e.family == 'claims')][['contrast', 'benchmark', 'setting', 'diff', 'low', "
             "'high', 'df', 'p_adj', 'mde', 'seed_share', 'seeds_agree']].round(4)"),
    ("md", "Verdicts on the paper's claims (C1-C5, and A1: hybrid improves alignment). With one training seed there is no "
           "verdict about strategies at all, and with two the test's level is not kept: below 3 seeds a verdict reads "
           "`too few seeds`:"),
    ("code", "res['verdicts'][['claim', 'benchmark', 'verdict', 'evidence']]"),
    ("md", "Power plan: how many training seeds (at this run's answer clusters) would detect a difference of 0.01 mAP, and "
           "the paper's own effect for the nearest encoder, with 80% power: at the estimated seed variance, and (`_upper`) at its "
           "upper 95% bound, the count to plan with:"),
    ("code", "res['power'][['contrast', 'benchmark', 'setting', 'metric', 'n_seeds', 'mde', 'power_at_target', "
             "'seeds_for_target', 'seeds_for_target_upper', 'paper_diff', 'seeds_for_paper', 'seeds_for_paper_upper']]"),
])

write("04_alignment.ipynb", [
    ("md", "# 4 · Alignment\nHow close are translations in embedding space, before and after each strategy? Cosine gap (parallel minus "
           "non-parallel), translation retrieval P@1 and language k-NN purity (mean over seeds), their effects with intervals "
           "over seeds and groups, and QA retrieval accuracy@k on TyDi-QA."),
    ("code", PARAMETERS),
    ("code", SETUP),
    ("code", "viz = hbkit.figures\nrun = hbkit.load_run(RUN)\nal = run['alignment']\n"
             "al.pivot_table(index=['benchmark', 'metric'], columns='model', values='value', aggfunc='mean')"),
    ("code", "e = run['effects']\ne[e.setting == 'alignment'][['contrast', 'benchmark', 'metric', 'better', 'diff', 'low', 'high', 'p_adj']].round(4)"),
    ("md", "Translation P@1 per language pair, before training and after hybrid training (first seed):"),
    ("code", "x = hbkit.load_benchmark('xquad-r-eval').subsample(cfg['eval_groups'].get('xquad-r-eval') or 60, seed=cfg['eval_seed'])\n"
             "pairs = {m: hbkit.evaluate_alignment(hbkit.load_encoder(p), x, progress=True).assign(model=m)\n"
             "         for m, p in (('base', cfg['model']), ('hybrid', RUN + '/models/hybrid-s0/model'))}\n"
             "viz.alignment_heatmap(pairs['base'], 'base', 'xquad-r-eval')"),
    ("code", "viz.alignment_heatmap(pairs['hybrid'], 'hybrid', 'xquad-r-eval')"),
    ("md", "TyDi-QA: is the gold passage among the k nearest candidates, within the query's language (`mono`) and in the pool of all 9 languages (`multi`)? Mean over seeds with intervals over seeds and questions:"),
    ("code", "pq = run['per_query']\nhbkit.aggregate(pq[pq.benchmark == 'tydiqa'], metrics=('acc@1', 'acc@10'))[['model', 'setting', 'metric', 'mean', 'low', 'high', 'seeds']]"),
    ("md", "Language bias as the field measures it now (`hbkit.retrieval.bias`, each checked against its authors' code), in the "
           "multilingual pool: TLR@10 (share of the relevant passages in *other* languages in the top 10), MRC@10 (rank "
           "correlation of a question's translations) and PEER@20 (higher is fairer; one constant on these pools, where each "
           "question has one relevant passage per language, so it is shown, not tested). Mean over seeds with intervals, then "
           "the strategy effects that decide C4 (with rank distance):"),
    ("code", "bias = ['rank_distance', 'tlr@10', 'mrc@10', 'peer@20']\na = run['aggregate']\n"
             "a[(a.setting == 'multi') & a.metric.isin(bias)].pivot_table(index=['benchmark', 'metric'], columns='model', values='mean')"),
    ("code", "e[(e.family == 'claims') & e.metric.isin(bias)][['contrast', 'benchmark', 'metric', 'better', 'diff', 'low', 'high', 'p_adj']].round(4)"),
    ("md", "Does hybrid batching beat a free fix? Two training-free transforms of the embeddings (`hbkit.retrieval.posthoc`), "
           "estimated for each model from its training passages only (never a benchmark's pool): SHIFT subtracts from each "
           "passage its language's mean offset from the English translation, centering subtracts each language's mean "
           "passage from queries and passages. What each was estimated from, then mAP and TLR@10 of the base model and of "
           "hybrid with and without them, and the verdicts C6 (hybrid beats SHIFT on the base model) and C7 (centering):"),
    ("code", "hbkit.fixes_table(RUN).head(6)"),
    ("code", "shown = [m for m in a.model.unique() if m.split('+')[0] in ('base', 'hybrid')]\n"
             "a[a.model.isin(shown) & (((a.metric == 'map') & a.setting.isin(['mono', 'cross', 'multi'])) | (a.metric == 'tlr@10'))]"
             ".pivot_table(index=['benchmark', 'setting', 'metric'], columns='model', values='mean').round(3)"),
    ("code", "v = run['verdicts']\nv[v.claim.isin(['C6', 'C7'])][['claim', 'benchmark', 'verdict', 'evidence']]"),
    ("md", "Alignment is not retrieval (mOthello, arXiv 2404.12444, found that alignment alone does not give transfer). Across "
           "every model and seed of the run, how far does each alignment measure move with mAP? Spearman's rho per setting "
           "with a 95% interval, then the points themselves:"),
    ("code", "corr = hbkit.alignment_vs_retrieval(run['results'], al)\ncorr.round(3)"),
    ("code", "viz.alignment_vs_retrieval_figure(run['results'], al)"),
])

write("05_language_clusters.ipynb", [
    ("md", "# 5 · Language clusters\nUMAP of parallel XQuAD-R questions, coloured by language (hover shows the text). A model whose "
           "space clusters by language puts translations far apart; after cross-lingual training they should mix. "
           "Next to it, the language-ID k-NN purity (share of a text's 10 nearest neighbours in its own language) against the share expected if languages were mixed."),
    ("code", PARAMETERS),
    ("code", SETUP),
    ("code", "run = hbkit.load_run(RUN)\nhbkit.figures.umap_scatter(run['umap'])"),
    ("code", "al = run['alignment']\nal[al.metric == 'lang_knn_purity'].pivot_table(index='benchmark', columns='model', values='value', aggfunc='mean')"),
])

write("06_dashboard.ipynb", [
    ("md", "# 6 · Strategy dashboard\nPick strategies, benchmark, metric, setting and a language pair; the figures update from the saved "
           "results. The first figure compares the models; the second puts every trained model on the α axis (X-Y only = 0, "
           "the paper's hybrid = 0.5, X-X-mono only = 1, plus any `hybrid-a<α>` run), with the base model dotted. "
           "Values are means over training seeds; the α curve has error bars over seeds and query groups. "
           "The α slider picks an extra hybrid share; the button trains the strategies (and hybrid at that α) at this notebook's "
           "profile into the same run folder, in the background (the notebook stays usable), with a progress bar and a cancel "
           "button, and redraws when done; models already there are not trained again.\n\n"
           "**The paper's Table 1 beside ours.** hbkit ships the paper's Table 1 (XLM-R, LaBSE) and LAReQA's mBERT baselines "
           "(`hbkit/analysis/published/arxiv-2408.10536-table1.csv`, with its source); `HBKIT_REFERENCE=other.csv` replaces it. They are "
           "other encoders, trained on other data, evaluated on the full XQuAD-R: compare the *effects* (which strategy wins "
           "where), shown below beside ours, not the absolute values."),
    ("code", PARAMETERS),
    ("code", SETUP),
    ("code", "reference = hbkit.default_reference()  # the shipped Table 1, or HBKIT_REFERENCE\n"
             "dash = hbkit.Dashboard(hbkit.load_results(RUN), out=RUN, profile=cfg['profile'], reference=reference,\n"
             "                       aggregate=hbkit.load_aggregate(RUN), encoder=hbkit.run_encoder(RUN))  # 'ours - paper' only against the same encoder\ndash.widget"),
    ("md", "The same dashboard driven from code: multilingual mAP on MLQA-R, per model and against α."),
    ("code", "dash.benchmark.value = 'mlqa-r'\ndash.setting.value = 'multi'\n"
             "[(t.name, [round(float(v), 3) for v in t.y]) for t in dash.figure.data]"),
    ("code", "[(t.name, [float(a) for a in t.x], [round(float(v), 3) for v in t.y]) for t in dash.alpha_fig.data]"),
    ("code", "dash.table"),
    ("md", "The paper's effects beside ours (same sign? the paper's effect inside our interval?) and the verdicts:"),
    ("code", "run = hbkit.load_run(RUN)\n"
             "hbkit.effects_view(run['effects'], reference).dropna(subset=['diff'])[['encoder', 'contrast', 'benchmark', 'setting', 'metric', 'paper_diff', 'diff', 'low', 'high', 'same_sign', 'paper_inside_our_interval']].round(3)"),
    ("code", "run['verdicts'][['claim', 'benchmark', 'verdict']]"),
    ("md", "**The paper's per-language tables beside ours** (the dashboard's lower part). hbkit ships the paper's Tables 3-8 "
           "(XQuAD-R and MLQA-R per language: mAP and rank distance) and 12-13 (MIRACL dev nDCG@10 and Recall@100 per language, "
           "XLM-R and LaBSE). The bars put the paper's encoders beside ours for one strategy; a language this run never trained "
           "on is marked *unseen*, as the paper marks el and vi. Below them, the paper's per-language differences between "
           "strategies beside ours (same sign?). Driven from code: XQuAD-R multilingual mAP of hybrid, per language."),
    ("code", "dash.lang_benchmark.value, dash.lang_setting.value, dash.lang_metric.value = 'xquad-r', 'multi', 'map'\n"
             "[(t.name, {l: round(float(v), 3) for l, v in zip(t.x, t.y)}) for t in dash.language_fig.data]"),
    ("code", "dash.language_effects.head(12)"),
    ("md", "MIRACL's per-language Recall@100 from the paper (and ours, where the run evaluated MIRACL):"),
    ("code", "miracl = hbkit.figures.language_bars(dash.languages, 'miracl', 'mono', 'recall@100', 'hybrid')\n"
             "[(t.name, len(t.x)) for t in miracl.data]"),
    ("md", "The dashboard as it stands now, drawn once as plain figures: what a reader of this notebook's HTML copy, "
           "who runs nothing, sees in place of the live widgets above."),
    ("code", "_ = dash.snapshot()"),
])
