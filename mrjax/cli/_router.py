"""``mrjax fit``, ``mrjax route``, ``mrjax evaluate``: from a user's table to a saved router, decisions, and
an evaluation on labelled queries.

    mrjax fit DATA -o ROUTER --features a,b,c | --feature-prefix emb_ | --text-column prompt
              [--label label | --models m1,m2,m3 [--reference m1]]
              [--source source --gold-value gold --preference-value preference] [options]
    mrjax route ROUTER QUERIES -o OUT.csv [--id-column id] [--cost-weight W | --target-share S | --budget B]
              [--model-costs m1=0.1,m2=COLUMN,...]   (a router among several models: --models at fit)
    mrjax evaluate ROUTER LABELLED -o FOLDER (--gain-column g | --primary-column a --alternative-column b)
              | --model-costs m1=0.1,...   (a router among several models: scores in the models' columns)

Tables are CSV, TSV, Parquet or JSON Lines (by extension). Every mistake in the input is one line and exit
status 2, with nothing written.
"""
from __future__ import annotations

import argparse
import json
import os
import warnings

import numpy as np

from mrjax._checks import finite, unit_interval
from mrjax._output import check_destination, results_folder
from mrjax.cli._common import Failed, UsageError, num, run_meta

STANDARDIZE = {"features": True, "common": "common", "none": False}


def _router_options(p) -> None:
    """Every ``MetaRouter`` option as a flag (defaults are the facade's)."""
    from mrjax.cate._kinds import CATE_LEARNERS
    from mrjax.learners._auto import CLASSIFIERS, REGRESSORS
    from mrjax.data._scale import SCALE_METHODS
    from mrjax.router._presets import PRESETS

    g = p.add_argument_group("router options (MetaRouter's arguments)")
    g.add_argument("--method", default="meta", choices=sorted(PRESETS), metavar="NAME",
                   help="router method: meta (default), a baseline (golden, preference, pooled, mean_shift) or any "
                        "router.PRESETS name")
    g.add_argument("--cate", choices=sorted(CATE_LEARNERS), help="bias learner of the Meta-Router (default: r)")
    g.add_argument("--learner", choices=REGRESSORS, default="rff",
                   help="regressor for the outcome models, the bias and ψ̂: rff (random-feature RBF ridge, default), "
                        "relevance (the same with a length-scale per feature), gbt (boosted trees), forest, ridge "
                        "(linear), or auto (each model picks rff, relevance or gbt by cross-validated loss)")
    g.add_argument("--propensity", choices=CLASSIFIERS + ("known",), default="logistic",
                   help="P(gold | x): logistic, gbt, forest, auto (logistic or gbt by cross-validated log-loss), or "
                        "known when the gold rows were drawn at random")
    g.add_argument("--n-folds", type=int, default=5, help="cross-fitting folds (0: in-sample nuisances)")
    g.add_argument("--scale", choices=SCALE_METHODS, default="variance", help="preference-label scale normalisation")
    g.add_argument("--preference-weight", default="1.0",
                   help="λ, the weight of the debiased preference rows, or cv / cv_routing to cross-validate it")
    g.add_argument("--propensity-clip", default="0.001,0.999", help="LOW,HIGH clip of the propensity")
    g.add_argument("--bias-clip", type=float, help="bound on |Δ̂| (default: none)")
    g.add_argument("--standardize", choices=tuple(STANDARDIZE), default="features",
                   help="feature scaling: per feature (default), one common scale (embeddings' principal components), "
                        "or none")
    g.add_argument("--relevance", action=argparse.BooleanOptionalAction, default=True,
                   help="learn a length-scale per feature from the labelled rows and divide the features by it "
                        "before every model; a Meta-Router's quality model learns its own from its debiased "
                        "targets (default; MetaRouter's relevance)")
    g.add_argument("--seed", type=int, default=0, help="random key of the fit")
    g.add_argument("--trim", type=float, default=0.0, help="leave rows with propensity outside [a, 1-a] out of the bias fit")


def add_parsers(sub) -> None:
    f = sub.add_parser(
        "fit", help="fit a router on a table of gold and preference rows and save it",
        description="Fit a Meta-Router on a table (CSV, TSV, Parquet or JSON Lines) holding both label sources, and "
                    "save it to a folder (JSON manifest and .npz arrays). Features are numeric columns (named, or by "
                    "prefix) or a text column embedded with all-MiniLM-L6-v2 (the [embed] extra; embeddings cached "
                    "beside the table). Example: mrjax fit train.csv -o router --feature-prefix pc_ --label score "
                    "--source source --gold-value expert --preference-value judge")
    f.add_argument("data", help="the training table")
    f.add_argument("-o", "--out", required=True, help="router folder to write")
    _feature_flags(f)
    f.add_argument("--label", default="label", help="label column: gold gain on gold rows, preference gain on the others")
    f.add_argument("--models", help="route among several models: their score columns (comma-separated; each row's "
                                    "score from its source), instead of --label")
    f.add_argument("--reference", help="with --models: the model whose gain is 0, best the cheapest (default: the first)")
    f.add_argument("--source", default="source", help="column saying which source labelled each row")
    f.add_argument("--gold-value", default="gold", help="the source column's value on gold rows (compared as text)")
    f.add_argument("--preference-value", default="preference", help="its value on preference rows")
    f.add_argument("--weight", help="optional sample-weight column")
    _router_options(f)
    f.add_argument("--keep-data", action="store_true", help="store the training rows with the router (needed for "
                                                            "intervals when routing)")
    f.add_argument("--overwrite", action="store_true", help="replace an existing router folder")
    f.add_argument("--quiet", action="store_true", help="print nothing but errors")
    f.set_defaults(run=fit)

    r = sub.add_parser(
        "route", help="score and route the queries of a table with a saved router",
        description="Score queries with a saved router and decide, per row: quality_gain (ψ̂), optionally an "
                    "interval, and to_primary. The operating point is a cost weight, a target share of primary calls "
                    "or a budget (mean cost per query), calibrated on these queries. Example: mrjax route router "
                    "queries.csv -o routed.csv --id-column id --target-share 0.3")
    r.add_argument("router", help="router folder written by mrjax fit (or MetaRouter.save)")
    r.add_argument("queries", help="table of queries with the router's feature columns (or its text column)")
    r.add_argument("-o", "--out", required=True, help="output table (.csv, .tsv, .parquet, .jsonl)")
    r.add_argument("--id-column", help="column copied to the output to identify rows")
    point = r.add_mutually_exclusive_group()
    point.add_argument("--cost-weight", type=float, help="route to the primary iff ψ̂ > w·(C_p − C_a) (default 0)")
    point.add_argument("--target-share", type=float, help="the share of queries to send to the primary")
    point.add_argument("--budget", type=float, help="the most estimated quality with a mean cost per query ≤ BUDGET")
    r.add_argument("--cost-primary", default="1", help="the primary model's cost: a number or a column name")
    r.add_argument("--cost-alternative", default="0", help="the alternative's cost: a number or a column name")
    r.add_argument("--model-costs", help="a router among several models: each model's cost, NAME=NUMBER or "
                                         "NAME=COLUMN, comma-separated")
    r.add_argument("--interval", type=float, metavar="LEVEL", help="add a bootstrap interval for ψ̂ at this level "
                                                                   "(the router must be saved with --keep-data)")
    r.add_argument("--confidence", type=float, metavar="ALPHA",
                   help="uncertainty-aware routing: a costlier model only for a gain its bootstrap draws clear with "
                        "probability ALPHA (primary iff P(ψ > w·(C_p − C_a)) ≥ ALPHA; needs --keep-data)")
    r.add_argument("--replicates", type=int, default=200, help="bootstrap replicates for --interval and --confidence")
    r.add_argument("--text-column", help="text column to embed (default: the one the router was fitted on)")
    r.add_argument("--overwrite", action="store_true", help="replace an existing output table")
    r.add_argument("--quiet", action="store_true", help="print nothing but errors")
    r.set_defaults(run=route)

    e = sub.add_parser(
        "evaluate", help="judge a saved router on labelled queries: gain curve, CPT, APGR, with bootstrap bands",
        description="Evaluate a saved router on queries with known gold outcomes: its efficiency gain over the random "
                    "router at every usage, the performance gap recovered (PGR), RouteLLM's APGR and CPT(50%%/80%%), "
                    "with bootstrap bands over the queries. Writes evaluation.json, curve.csv and "
                    "efficiency_gain.png/.pdf/.svg. Example: mrjax evaluate router test.csv -o eval --primary-column "
                    "gpt4_correct --alternative-column mixtral_correct. A router among several models (mrjax fit "
                    "--models) is judged at budgets against the single models, its models' true scores in the "
                    "columns named as the models: mrjax evaluate multi test.csv -o eval --model-costs "
                    "gemma=0.1,llama=COLUMN (writes quality_cost.png/.pdf/.svg instead)")
    e.add_argument("router", help="router folder")
    e.add_argument("labelled", help="table of queries with features and gold outcomes")
    e.add_argument("-o", "--out", required=True, help="output folder")
    e.add_argument("--gain-column", help="the primary model's gold gain over the alternative per query")
    e.add_argument("--primary-column", help="the primary model's gold score (with --alternative-column)")
    e.add_argument("--alternative-column", help="the alternative model's gold score")
    e.add_argument("--model-costs", help="a router among several models (mrjax fit --models): each model's cost, "
                                         "NAME=NUMBER or NAME=COLUMN, comma-separated; the models' true scores are "
                                         "read from the columns named as the models")
    e.add_argument("--budgets", type=int, help="a router among several models: the number of budgets, evenly spaced "
                                               "from the cheapest model's mean cost to the dearest's (default 21)")
    e.add_argument("--replicates", type=int, default=1000, help="bootstrap resamples of the queries for the bands")
    e.add_argument("--level", type=float, default=0.95, help="band level")
    e.add_argument("--seed", type=int, default=0, help="random key of the resamples")
    e.add_argument("--text-column", help="text column to embed (default: the one the router was fitted on)")
    e.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    e.add_argument("--quiet", action="store_true", help="print nothing but errors")
    e.set_defaults(run=evaluate)


def _feature_flags(p) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--features", help="comma-separated feature columns")
    g.add_argument("--feature-prefix", help="every column whose name starts with this prefix is a feature")
    g.add_argument("--text-column", help="a text column, embedded with all-MiniLM-L6-v2 (the [embed] extra)")


def _table(path):
    from mrjax.data._tables import read_table

    try:
        return read_table(path)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _embedded(frame, path, column):
    """The text column's embeddings as a DataFrame of ``emb_000`` … columns (cached beside the table)."""
    import pandas as pd

    from mrjax.data._embed import cache_path, embed_texts

    if column not in frame.columns:
        raise UsageError(f"{path}: text column {column!r} not in the table; it has {list(frame.columns)[:20]}")
    texts = frame[column]
    if texts.isna().any():
        raise UsageError(f"{path}: text column {column!r} is empty at row {int(np.argmax(texts.isna().to_numpy()))}")
    try:
        emb = embed_texts(texts.astype(str).tolist(), cache_path(path, column))
    except ValueError as err:
        raise UsageError(str(err)) from None
    return pd.DataFrame(emb, columns=[f"emb_{i:03d}" for i in range(emb.shape[1])], index=frame.index)


def _router_args(args) -> dict:
    try:
        clip = tuple(float(v) for v in args.propensity_clip.split(","))
    except ValueError:
        raise UsageError(f"--propensity-clip must be LOW,HIGH, got {args.propensity_clip!r}") from None
    lam = args.preference_weight
    if lam not in ("cv", "cv_routing"):
        try:
            lam = float(lam)
        except ValueError:
            raise UsageError(f"--preference-weight must be a number, cv or cv_routing, got {lam!r}") from None
    return dict(method=args.method, cate=args.cate, learner=args.learner,
                propensity=args.propensity, n_folds=args.n_folds, scale=args.scale, preference_weight=lam,
                propensity_clip=clip, bias_clip=args.bias_clip, standardize=STANDARDIZE[args.standardize],
                relevance=args.relevance, seed=args.seed, trim=args.trim, progress=not args.quiet)


def _destination(out, overwrite):
    try:
        check_destination(out, overwrite)
    except ValueError as err:
        raise UsageError(str(err).replace("--out", "-o")) from None


def _value_text(value) -> str:
    """A summary value as printed: numbers to six significant digits (pandas rounds a float in an object
    column to its display precision, so a gradient norm of 1e-7 read as 0.0)."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def fit(args) -> int:
    from mrjax.api import MetaRouter
    from mrjax.data._dataset import from_dataframe
    from mrjax.data._tables import feature_columns

    _destination(args.out, args.overwrite)
    try:
        router = MetaRouter(**_router_args(args))
    except ValueError as err:
        raise UsageError(str(err)) from None
    frame = _table(args.data)
    metadata = {"source_file": os.path.basename(args.data)}
    if args.text_column:
        features = _embedded(frame, args.data, args.text_column)
        metadata.update(text_column=args.text_column, embedding="all-MiniLM-L6-v2")
    elif args.features or args.feature_prefix:
        try:
            cols = feature_columns(frame, args.features.split(",") if args.features else None, args.feature_prefix)
        except ValueError as err:
            raise UsageError(f"{args.data}: {err}") from None
        features = frame[cols]
    else:
        numeric = [str(c) for c in frame.select_dtypes("number").columns if c not in (args.label, args.weight)]
        raise UsageError(f"name the features: --features a,b,c, --feature-prefix P or --text-column C (numeric "
                         f"columns here: {numeric[:12]})")
    if args.models:
        return _fit_models(args, frame, features, [str(c) for c in features.columns], metadata)
    for name, col in (("--label", args.label), ("--source", args.source), ("--weight", args.weight)):
        if col is not None and col not in frame.columns:
            raise UsageError(f"{args.data}: {name} column {col!r} not in the table; it has {list(frame.columns)[:20]}")
    cols = [str(c) for c in features.columns]
    # The source compared as text: the values the flags name, exactly (a stray "judge " is a third value).
    table = features.assign(**{args.label: frame[args.label].to_numpy(), args.source: frame[args.source].astype(str)},
                            **({args.weight: frame[args.weight].to_numpy()} if args.weight else {}))
    try:
        data = from_dataframe(table, cols, args.label, args.source, gold_value=args.gold_value,
                              preference_value=args.preference_value, weight_column=args.weight)
    except ValueError as err:
        raise UsageError(f"{args.data}: {err}") from None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            router.fit(data)
        except FloatingPointError as err:
            raise Failed(f"the fit failed: {err}") from None
    router.feature_names_in_ = cols
    router.save(args.out, keep_data=args.keep_data, overwrite=args.overwrite, metadata=metadata)
    if not args.quiet:
        print(router.summary().to_string(formatters={"value": _value_text}))
        for w in caught:
            print(f"mrjax: warning: {w.message}")
        print(f"saved the router to {args.out}" + (" (with its training data)" if args.keep_data else ""))
    return 0


def _fit_models(args, frame, features, cols, metadata) -> int:
    """``mrjax fit --models``: a ``MultiRouter`` on the models' score columns, split by the source column."""
    from mrjax.multi import MultiRouter

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if len(models) < 2 or len(set(models)) != len(models):
        raise UsageError(f"--models needs two or more distinct score columns, got {args.models!r}")
    missing = [m for m in models if m not in frame.columns]
    if missing:
        raise UsageError(f"{args.data}: --models columns {missing} not in the table; it has {list(frame.columns)[:20]}")
    reference = args.reference or models[0]
    if reference not in models:
        raise UsageError(f"--reference {reference!r} is not one of --models {models}")
    if args.source not in frame.columns:
        raise UsageError(f"{args.data}: --source column {args.source!r} not in the table")
    source = frame[args.source].astype(str).to_numpy()
    gold, pref = source == args.gold_value, source == args.preference_value
    if not (gold | pref).all():
        i = int(np.nonzero(~(gold | pref))[0][0])
        raise UsageError(f"{args.data}: --source column {args.source!r} row {i} is {source[i]!r}; expected "
                         f"{args.gold_value!r} or {args.preference_value!r}")
    if not gold.any() or not pref.any():
        raise UsageError(f"{args.data}: no {'gold' if not gold.any() else 'preference'} rows (source values "
                         f"{sorted(set(source))[:5]})")
    weight = {}
    if args.weight:
        if args.weight not in frame.columns:
            raise UsageError(f"{args.data}: --weight column {args.weight!r} not in the table")
        w = frame[args.weight].to_numpy()
        weight = dict(gold_sample_weight=w[gold], preference_sample_weight=w[pref])
    scores = frame[models]
    try:
        router = MultiRouter(reference=reference, **_router_args(args))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            router.fit(features[gold], scores[gold], features[pref], scores[pref], **weight)
    except ValueError as err:
        raise UsageError(f"{args.data}: {err}") from None
    except FloatingPointError as err:
        raise Failed(f"the fit failed: {err}") from None
    router.save(args.out, keep_data=args.keep_data, overwrite=args.overwrite, metadata=metadata)
    if not args.quiet:
        print(f"gains over {reference} on the {int(gold.sum())} gold and {int(pref.sum())} preference rows "
              f"({len(cols)} features):")
        X = features
        gains, bias = np.asarray(router.quality_gain(X)), {}
        for name, sub in router.routers_.items():
            bias[name] = float(np.mean(sub.effect(X)))
        print(f"{'model':<32} {'mean gain':>12} {'mean bias':>12}")
        for k, name in enumerate(router.models_):
            b = "—" if name not in bias else f"{bias[name]:+.4f}"
            print(f"{str(name):<32} {gains[:, k].mean():>+12.4f} {b:>12}")
        for w in caught:
            print(f"mrjax: warning: {w.message}")
        print(f"saved the router to {args.out}" + (" (with its training data)" if args.keep_data else ""))
    return 0


def _load(path):
    from mrjax.api import MetaRouter
    from mrjax.multi import MANIFEST, MultiRouter

    try:
        if os.path.isfile(os.path.join(path, MANIFEST)):
            return MultiRouter.load(path)
        return MetaRouter.load(path)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _model_costs(router, frame, path, spec):
    """``(n, K)`` costs from ``NAME=NUMBER|COLUMN,...``, one entry per model of the router."""
    if not spec:
        raise UsageError(f"this router routes among {len(router.models_)} models: give --model-costs "
                         f"{','.join(f'{m}=COST' for m in router.models_)} (a number or a column per model)")
    given = {}
    for part in spec.split(","):
        name, eq, value = part.partition("=")
        if not eq or not name.strip() or not value.strip():
            raise UsageError(f"--model-costs: expected NAME=COST entries, got {part!r}")
        given[name.strip()] = value.strip()
    names = [str(m) for m in router.models_]
    unknown, missing = sorted(set(given) - set(names)), [m for m in names if m not in given]
    if unknown or missing:
        raise UsageError("--model-costs: " + (f"unknown models {unknown}; " if unknown else "")
                         + (f"no cost for {missing}; " if missing else "") + f"the router's models are {names}")
    n = len(frame)
    return np.stack([np.broadcast_to(_cost(frame, path, given[m], f"--model-costs {m}="), (n,)) for m in names], 1)


def _route_models(args, router, frame, X) -> int:
    import pandas as pd

    from mrjax.data._tables import write_table

    if args.target_share is not None:
        raise UsageError("a router among several models takes --cost-weight or --budget (a share is one per model)")
    cost = _model_costs(router, frame, args.queries, args.model_costs)
    confidence = _confidence(router, X, args)
    try:
        if args.budget is not None:
            w = float(router.calibrate(X, finite("--budget", args.budget), cost, confidence).cost_weight[0])
        else:
            w = 0.0 if args.cost_weight is None else finite("--cost-weight", args.cost_weight)
        gains = np.asarray(router.quality_gain(X))
        if args.interval is not None:
            lower, upper = (np.asarray(a) for a in router.quality_interval(
                X, n_replicates=args.replicates, level=unit_interval("--interval", args.interval)))
        chosen = router.route(X, w, cost, confidence)
    except (ValueError, RuntimeError) as err:
        raise UsageError(str(err)) from None
    out = pd.DataFrame(index=frame.index)
    if args.id_column:
        out[args.id_column] = frame[args.id_column]
    for k, name in enumerate(router.models_):
        out[f"gain_{name}"] = gains[:, k]
        if args.interval is not None:
            out[f"lower_{name}"], out[f"upper_{name}"] = lower[:, k], upper[:, k]
    out["model"] = [router.models_[k] for k in chosen]
    write_table(out, args.out)
    if not args.quiet:
        spent = np.mean(cost[np.arange(len(chosen)), chosen])
        shares = ", ".join(f"{m} {np.mean(chosen == k):.1%}" for k, m in enumerate(router.models_) if np.any(chosen == k))
        rule = "" if confidence is None else f" (confidence {confidence:g})"
        print(f"cost weight {w:.6g}{rule}: {shares} of {len(out)} queries, mean cost {spent:.6g} per query; wrote {args.out}")
    return 0


def _confidence(router, X, args):
    """``--confidence`` checked, its bootstrap replicates (``--replicates``) fitted and kept; None without it."""
    if args.confidence is None:
        return None
    try:
        alpha = unit_interval("--confidence", args.confidence)
    except ValueError as err:
        raise UsageError(str(err)) from None
    try:
        router.draws(X, n_replicates=args.replicates)
    except (ValueError, RuntimeError) as err:
        raise UsageError(f"--confidence: {err}") from None
    return alpha


def _query_features(router, frame, path, text_column):
    text_column = text_column or (router.metadata_ or {}).get("text_column")
    if text_column:
        return _embedded(frame, path, text_column)
    names = router.feature_names_in_
    if names is None:
        raise UsageError("the router was fitted on arrays without column names; score it from Python")
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise UsageError(f"{path}: feature columns {missing[:10]} of the router are missing ({len(missing)} of "
                         f"{len(names)})")
    from mrjax.data._dataset import _as_float, _check_finite

    try:
        _check_finite("features", _as_float("features", frame[names], 2), names)
    except ValueError as err:
        raise UsageError(f"{path}: {err}") from None
    return frame[names]


def _cost(frame, path, value, name):
    try:
        return float(value)
    except ValueError:
        if value not in frame.columns:
            raise UsageError(f"{name} {value!r}: neither a number nor a column of {path}") from None
        return frame[value].to_numpy(dtype=np.float64)


def route(args) -> int:
    import pandas as pd

    from mrjax.data._tables import table_format, write_table

    try:
        table_format(args.out)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if os.path.exists(args.out) and not args.overwrite:
        raise UsageError(f"-o {args.out}: the file exists; choose another or pass --overwrite to replace it")
    router = _load(args.router)
    router.progress = not args.quiet
    frame = _table(args.queries)
    if args.id_column and args.id_column not in frame.columns:
        raise UsageError(f"{args.queries}: --id-column {args.id_column!r} not in the table")
    X = _query_features(router, frame, args.queries, args.text_column)
    if hasattr(router, "models_"):
        return _route_models(args, router, frame, X)
    if args.model_costs:
        raise UsageError("--model-costs is for a router among several models (mrjax fit --models); this one has two: "
                         "--cost-primary and --cost-alternative")
    cp = _cost(frame, args.queries, args.cost_primary, "--cost-primary")
    ca = _cost(frame, args.queries, args.cost_alternative, "--cost-alternative")
    confidence = _confidence(router, X, args)
    try:
        if args.target_share is not None:
            w = float(router.calibrate(X, share=unit_interval("--target-share", args.target_share), cost_primary=cp,
                                       cost_alternative=ca, confidence=confidence).cost_weight[0])
        elif args.budget is not None:
            w = float(router.calibrate(X, budget=finite("--budget", args.budget), cost_primary=cp,
                                       cost_alternative=ca, confidence=confidence).cost_weight[0])
        else:
            w = 0.0 if args.cost_weight is None else finite("--cost-weight", args.cost_weight)
        out = pd.DataFrame(index=frame.index)
        if args.id_column:
            out[args.id_column] = frame[args.id_column]
        out["quality_gain"] = np.asarray(router.quality_gain(X))
        if args.interval is not None:
            lo, hi = router.quality_interval(X, n_replicates=args.replicates, level=unit_interval("--interval", args.interval))
            out["lower"], out["upper"] = np.asarray(lo), np.asarray(hi)
        out["to_primary"] = np.asarray(router.route(X, w, cp, ca, confidence))
    except (ValueError, RuntimeError) as err:
        raise UsageError(str(err)) from None
    write_table(out, args.out)
    if not args.quiet:
        cost = np.mean(np.where(out["to_primary"], cp, ca))
        rule = "" if confidence is None else f" (confidence {confidence:g})"
        print(f"cost weight {w:.6g}{rule}: {out['to_primary'].mean():.1%} of {len(out)} queries to the primary, mean cost "
              f"{cost:.6g} per query; wrote {args.out}")
    return 0


def _finite_columns(frame, columns, path) -> None:
    """Each column holds finite numbers, or a usage error naming it."""
    import pandas as pd

    for c in columns:
        if not pd.api.types.is_numeric_dtype(frame[c]) or not np.isfinite(frame[c].to_numpy(np.float64)).all():
            raise UsageError(f"{path}: column {c!r} must hold finite numbers")


def _evaluate_models(args, router, level) -> int:
    """``mrjax evaluate`` for a router among several models: quality and cost at budgets from the cheapest
    model's mean cost to the dearest's, against the best query-blind mixture of single models."""
    import jax
    import jax.numpy as jnp
    import pandas as pd

    from mrjax.cli._figures import plot_multi_evaluation
    from mrjax.inference._bootstrap import bootstrap_weights
    from mrjax.router._multi import evaluate_multi_routing

    if args.gain_column or args.primary_column or args.alternative_column:
        raise UsageError("a router among several models is scored on its models' own columns "
                         f"({', '.join(map(str, router.models_))}), not --gain-column / --primary-column")
    n_budgets = 21 if args.budgets is None else args.budgets
    if n_budgets < 1:
        raise UsageError(f"--budgets must be at least 1, got {args.budgets}")
    frame = _table(args.labelled)
    names = [str(m) for m in router.models_]
    missing = [m for m in names if m not in frame.columns]
    if missing:
        raise UsageError(f"{args.labelled}: no true-score column for models {missing}: the table needs one column per "
                         f"model, named as at fit ({names}); it has {list(frame.columns)[:20]}")
    _finite_columns(frame, names, args.labelled)
    X = _query_features(router, frame, args.labelled, args.text_column)
    cost = _model_costs(router, frame, args.labelled, args.model_costs)
    if not np.isfinite(cost).all():
        raise UsageError(f"{args.labelled}: --model-costs has a non-finite cost")
    values = frame[names].to_numpy(np.float32)
    per_model = cost.mean(axis=0)
    budgets = np.linspace(per_model.min(), per_model.max(), n_budgets)
    try:
        weights = np.asarray(router.calibrate(X, budgets, cost).cost_weight)
        chosen = jnp.asarray(router.route(X, weights, cost))
    except (ValueError, RuntimeError) as err:
        raise UsageError(str(err)) from None
    c32, b32 = jnp.asarray(cost, jnp.float32), jnp.asarray(budgets, jnp.float32)
    point = evaluate_multi_routing(chosen, values, c32, b32)
    W = bootstrap_weights(jax.random.key(args.seed), jnp.ones((len(frame),)), args.replicates)
    draws = jax.jit(jax.vmap(lambda w: evaluate_multi_routing(chosen, values, c32, b32, w)))(W)
    a = (1.0 - level) / 2.0
    lower = {k: np.quantile(np.asarray(getattr(draws, k)), a, axis=0) for k in draws._fields}
    upper = {k: np.quantile(np.asarray(getattr(draws, k)), 1 - a, axis=0) for k in draws._fields}
    band = lambda k: {"estimate": num(getattr(point, k)), "lower": num(lower[k]), "upper": num(upper[k])}  # noqa: E731
    report = {
        **run_meta(), "router": os.path.abspath(args.router), "labelled": os.path.abspath(args.labelled),
        "n_queries": len(frame), "models": names,
        "config": {"replicates": args.replicates, "level": level, "seed": args.seed, "budgets": n_budgets,
                   "model_costs": args.model_costs},
        "metrics": {"mean_quality": band("mean_quality"), "mean_gain_over_single_models": band("mean_gain"),
                    "oracle_quality": band("oracle")},
        "single_models": {m: {"mean_cost": num(point.model_cost[k]),
                              "mean_quality": {"estimate": num(point.model_quality[k]),
                                               "lower": num(lower["model_quality"][k]),
                                               "upper": num(upper["model_quality"][k])}} for k, m in enumerate(names)},
        "note": "budgets evenly spaced from the cheapest model's mean cost to the dearest's; at each, the router's "
                "cost weight is calibrated on these queries (their features and costs, not their scores). "
                "gain: the router's mean true score minus the best query-blind mixture of single models at the same "
                "mean cost (the upper, non-decreasing hull of their (mean cost, mean score) points). Bands: "
                "percentile intervals over bootstrap resamples of the labelled queries, the router and its weights "
                "held fixed",
    }
    curve = pd.DataFrame({"budget": budgets, "cost_weight": weights, "cost": np.asarray(point.cost),
                          "cost_lower": lower["cost"], "cost_upper": upper["cost"],
                          "quality": np.asarray(point.quality), "quality_lower": lower["quality"],
                          "quality_upper": upper["quality"], "single_model_hull": np.asarray(point.hull),
                          "gain": np.asarray(point.gain), "gain_lower": lower["gain"], "gain_upper": upper["gain"]})
    chosen_np = np.asarray(chosen)
    for k, m in enumerate(names):
        curve[f"usage_{m}"] = (chosen_np == k).mean(axis=1)
    with results_folder(args.out) as tmp:
        with open(os.path.join(tmp, "evaluation.json"), "w") as f:
            json.dump(report, f, indent=2)
        curve.to_csv(os.path.join(tmp, "curve.csv"), index=False)
        plot_multi_evaluation(os.path.join(tmp, "quality_cost"), point, lower, upper, names,
                              f"{os.path.basename(os.path.normpath(args.router))} on {os.path.basename(args.labelled)} "
                              f"({len(frame)} queries; {level:.0%} bands over {args.replicates} resamples)")
    if not args.quiet:
        pct = f"{level:.0%}"
        print(f"{'model':<32} {'mean cost':>12} {'mean score':>11}")
        for k, m in enumerate(names):
            print(f"{m:<32} {float(point.model_cost[k]):>12.6g} {float(point.model_quality[k]):>11.4f}")
        print(f"\n{'over ' + str(n_budgets) + ' budgets':<32} {'estimate':>12} {pct + ' band':>22}")
        for label, k in (("mean quality", "mean_quality"), ("mean gain over single models", "mean_gain"),
                         ("oracle (best model per query)", "oracle")):
            est, lo, hi = float(getattr(point, k)), float(lower[k]), float(upper[k])
            print(f"{label:<32} {est:>12.4f} {f'[{lo:.4f}, {hi:.4f}]':>22}")
        print(f"wrote {args.out}/evaluation.json, curve.csv, quality_cost.png (.pdf, .svg)")
    return 0


def evaluate(args) -> int:
    import jax
    import jax.numpy as jnp
    import pandas as pd

    from mrjax.cli._figures import plot_evaluation
    from mrjax.inference._bootstrap import bootstrap_weights
    from mrjax.router._metrics import CPT_LEVELS, evaluate_routing

    _destination(args.out, args.overwrite)
    if args.replicates < 2:
        raise UsageError(f"--replicates must be at least 2, got {args.replicates}")
    try:
        level = unit_interval("--level", args.level)
    except ValueError as err:
        raise UsageError(str(err)) from None
    router = _load(args.router)
    if hasattr(router, "models_"):
        return _evaluate_models(args, router, level)
    if args.model_costs or args.budgets is not None:
        raise UsageError("--model-costs and --budgets are for a router among several models (mrjax fit --models); "
                         "this one has two: give --gain-column, or --primary-column with --alternative-column")
    if (args.gain_column is None) == (args.primary_column is None and args.alternative_column is None):
        raise UsageError("give the gold outcome: --gain-column, or --primary-column with --alternative-column")
    if args.gain_column is None and (args.primary_column is None or args.alternative_column is None):
        raise UsageError("--primary-column and --alternative-column go together")
    frame = _table(args.labelled)
    cols = [args.gain_column] if args.gain_column else [args.primary_column, args.alternative_column]
    for c in cols:
        if c not in frame.columns:
            raise UsageError(f"{args.labelled}: column {c!r} not in the table; it has {list(frame.columns)[:20]}")
    _finite_columns(frame, cols, args.labelled)
    gain = frame[cols[0]].to_numpy(np.float64) if args.gain_column else \
        frame[cols[0]].to_numpy(np.float64) - frame[cols[1]].to_numpy(np.float64)
    X = _query_features(router, frame, args.labelled, args.text_column)
    psi = jnp.asarray(np.asarray(router.quality_gain(X)), jnp.float32)
    g = jnp.asarray(gain, jnp.float32)
    if float(jnp.sum(g)) <= 0:
        raise Failed(f"{args.labelled}: the primary model is not better on average (total gain {float(jnp.sum(g)):.4g}), "
                     "so the performance gap recovered is undefined; nothing was written")
    point = evaluate_routing(psi, g)
    W = bootstrap_weights(jax.random.key(args.seed), jnp.ones_like(g), args.replicates)
    draws = jax.jit(jax.vmap(lambda w: evaluate_routing(psi, g, w)))(W)
    a = (1.0 - level) / 2.0
    undefined = int(np.sum(~np.isfinite(np.asarray(draws.apgr))))  # resamples whose primary is not better on average
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lower = {k: np.nanquantile(np.asarray(getattr(draws, k)), a, axis=0) for k in draws._fields}
        upper = {k: np.nanquantile(np.asarray(getattr(draws, k)), 1 - a, axis=0) for k in draws._fields}
    metrics = {"apgr": [num(point.apgr), num(lower["apgr"]), num(upper["apgr"])]}
    for k, lvl in enumerate(CPT_LEVELS):
        metrics[f"cpt_{int(lvl * 100)}"] = [num(point.cpt[k]), num(lower["cpt"][k]), num(upper["cpt"][k])]
    report = {
        **run_meta(), "router": os.path.abspath(args.router), "labelled": os.path.abspath(args.labelled),
        "n_queries": int(g.shape[0]), "gain_per_query": float(np.mean(gain)),
        "config": {"replicates": args.replicates, "level": level, "seed": args.seed, "gain": cols},
        "metrics": {k: dict(zip(("estimate", "lower", "upper"), v)) for k, v in metrics.items()},
        "resamples_undefined": undefined,
        "note": "bands: percentile intervals over bootstrap resamples of the labelled queries (the router held fixed); "
                "PGR, APGR and CPT bands from the resamples where the primary is better on average "
                "(resamples_undefined: the others)",
    }
    curve = pd.DataFrame({"usage": np.asarray(point.usage), "efficiency_gain": np.asarray(point.efficiency_gain),
                          "efficiency_gain_lower": lower["efficiency_gain"],
                          "efficiency_gain_upper": upper["efficiency_gain"], "pgr": np.asarray(point.pgr),
                          "pgr_lower": lower["pgr"], "pgr_upper": upper["pgr"]})
    with results_folder(args.out) as tmp:
        with open(os.path.join(tmp, "evaluation.json"), "w") as f:
            json.dump(report, f, indent=2)
        curve.to_csv(os.path.join(tmp, "curve.csv"), index=False)
        plot_evaluation(os.path.join(tmp, "efficiency_gain"), point, lower, upper,
                        f"{os.path.basename(os.path.normpath(args.router))} on {os.path.basename(args.labelled)} "
                        f"({int(g.shape[0])} queries; {level:.0%} bands over {args.replicates} resamples)")
    if not args.quiet:
        pct = f"{level:.0%}"
        print(f"{'metric':<8} {'estimate':>9} {pct + ' band':>20}")
        for k, (est, lo, hi) in metrics.items():
            fmt = lambda v: "  nan" if v is None else f"{v:.3f}"  # noqa: E731
            print(f"{k.upper():<8} {fmt(est):>9} {'[' + fmt(lo) + ', ' + fmt(hi) + ']':>20}")
        if undefined:
            print(f"mrjax: warning: in {undefined} of {args.replicates} resamples the primary was not better on average "
                  "(PGR undefined there): the PGR, APGR and CPT bands are over the other resamples")
        print(f"wrote {args.out}/evaluation.json, curve.csv, efficiency_gain.png (.pdf, .svg)")
    return 0
