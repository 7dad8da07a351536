"""Monte-Carlo studies: split → fit every method → route → score, vmapped over runs.

One compiled program evaluates a batch of runs for all methods; batches run in a
Python loop (bounded memory, a progress bar advanced between batches, never inside traced
code), and each batch's run axis is sharded over all local devices.
"""
from __future__ import annotations

import dataclasses
import functools
import sys
import time
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mrjax._checks import choice, finite, integer, unit_interval
from mrjax._hyper import hyper_field, structure
from mrjax._typing import Array, PRNGKey
from mrjax.data._dataset import Dataset, check_standardize
from mrjax.data._simulate import SimulationConfig, simulate
from mrjax.learners._auto import REGRESSORS, named
from mrjax.learners._linear import RandomFeatureRidge
from mrjax.learners._relevance import FeatureRelevance
from mrjax.router._fit import (RouterConfig, default_hyper, finish_fit, fit_router, fit_targets, learn_relevances, predict_quality,
                               quality_relevance, searches_quality, shares_relevance)
from mrjax.router._presets import PRESETS
from mrjax.inference._bootstrap import bootstrap_predict, bootstrap_weights, interval
from mrjax.inference._value import efficiency_gain, efficiency_gain_draws
from mrjax.router._metrics import USAGE_GRID, run_curves

# The default study: the paper's Meta-Routers and every baseline (names from router.PRESETS).
DEFAULT_METHODS = ("meta_r", "meta_dr", "meta_x", "golden", "preference", "pooled", "mean_shift", "all_golden")


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """Static description of a Monte-Carlo study on a simulator.

    Attributes
    ----------
    n_runs : Monte-Carlo runs (the paper: 200), each a fresh split of the data.
    n_test : test queries per run, scored with their true gains (the paper: 500).
    n_gold : gold-labelled training queries per run (the paper: 100; also 500, 1,000).
    n_preference : preference-labelled training queries per run (real data: the rest of the pool).
    methods : names from ``router.PRESETS``, or ``(name, method value)`` pairs for methods
        defined elsewhere (the random router is always included); the ``*_cv`` and
        ``*_cv_routing`` variants (not in the default set: they refit the pipeline per fold
        and λ) choose λ per run by cross-validation on the gold rows.
    simulation : SimulationConfig of the data-generating design.
    n_features_rff : random features of every random-feature learner.
    learner : the regressor of every model (outcome, bias, ψ̂), a name from ``learners.REGRESSORS``:
        ``"rff"`` (default; random-feature ridge whose Gram matrix the methods of a run share),
        ``"relevance"``, ``"gbt"``, ``"forest"``, ``"ridge"`` or ``"auto"``.
    n_components : principal components of the embeddings (real-data studies only).
    standardize : feature standardisation of every method (``RouterConfig.standardize``):
        ``True`` per feature, ``"common"`` one common scale (relative scales kept).
    relevance : learn a length-scale per feature from the labels each method may use and divide the
        features by it before every model (``RouterConfig.relevance``); the methods that use both
        sources share one search per run. ``True`` (default) is ``learners.FeatureRelevance()``; a value
        sets its settings; ``False`` skips it.
    n_folds : cross-fitting folds of the Meta-Routers.
    batch_size : runs per device per compiled batch (bounds memory; fewer when the study has fewer runs per
        device). A run's bits are fixed by the key, the configuration and its batch; across batch sizes they
        agree to float32 rounding, as XLA picks kernels by array size (docs/design.md).
    bootstrap : replicates of the within-run bootstrap (0: none). Each run then also
        refits ``bootstrap_method`` on ``bootstrap`` stratified multinomial replicates and
        returns a ``bootstrap_level`` percentile band for its estimated efficiency gain
        (the band a user with that one dataset would see) beside the true gain of its
        ranking, so studies report how often within-run bands cover the truth.
    bootstrap_method : the method bootstrapped (default: the first Meta-Router in
        ``methods``, else the first method).
    bootstrap_level : level of the within-run band.
    preference_weight : λ, the weight of the debiased preference rows, for every method that uses
        one (the ``*_cv`` variants choose their own). A number: sweeping it does not recompile.

    Numbers (``preference_weight`` and the simulator's sweepable fields) reach the compiled program
    as arrays (:func:`study_hyper`); everything else is its static structure.
    """

    n_runs: int = 200
    n_test: int = 500
    n_gold: int = 100
    n_preference: int = 3900
    methods: tuple[str, ...] = DEFAULT_METHODS
    simulation: SimulationConfig = SimulationConfig()
    n_features_rff: int = 256
    n_folds: int = 5
    batch_size: int = 50
    n_components: int = 50
    standardize: bool | str = True
    bootstrap: int = 0
    bootstrap_method: str | None = None
    bootstrap_level: float = 0.95
    preference_weight: float = hyper_field(1.0)
    learner: str = "rff"
    relevance: bool | FeatureRelevance = True

    def __post_init__(self):
        if isinstance(self.methods, str):
            raise ValueError(f"methods must be a sequence of names, got the string {self.methods!r}")
        object.__setattr__(self, "methods", tuple(self.methods))
        unknown = [m for m in self.methods if isinstance(m, str) and m not in PRESETS]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; choose from {sorted(PRESETS)}")
        for m in self.methods:
            if not isinstance(m, str) and not (isinstance(m, tuple) and len(m) == 2 and isinstance(m[0], str)
                                               and hasattr(m[1], "with_learners")):
                raise ValueError(f"methods: each entry must be a preset name or a (name, method value) pair, got {m!r}")
        if not self.methods:
            raise ValueError("methods: at least one method is needed")
        if len(set(self.method_names)) != len(self.methods):
            raise ValueError(f"methods: names must be unique, got {list(self.method_names)}")
        for name in ("n_runs", "n_test", "n_gold", "n_preference", "batch_size", "n_features_rff", "n_components"):
            if integer(name, getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        integer("n_folds", self.n_folds, 0)  # 0: in-sample nuisances; 1 is rejected by the CATE learners
        check_standardize(self.standardize)
        if integer("bootstrap", self.bootstrap) == 1 or self.bootstrap < 0:
            raise ValueError(f"bootstrap must be 0 (none) or at least 2 replicates, got {self.bootstrap}")
        if self.bootstrap_method is None:
            metas = [n for n, m in zip(self.method_names, self.method_values()) if m.estimates_bias]
            object.__setattr__(self, "bootstrap_method", (metas or list(self.method_names))[0])
        if self.bootstrap_method not in self.method_names:
            raise ValueError(f"bootstrap_method {self.bootstrap_method!r} is not among methods {list(self.method_names)}")
        unit_interval("bootstrap_level", self.bootstrap_level)
        if self.preference_weight is not None:  # None: the structure of a config (learners.structure)
            finite("preference_weight", self.preference_weight, 0.0)
        if self.n_folds and self.n_gold < self.n_folds:
            raise ValueError(f"n_gold ({self.n_gold}) must be at least n_folds ({self.n_folds}): every fold needs "
                             "gold rows to cross-fit")
        choice("learner", self.learner, REGRESSORS)
        if not isinstance(self.relevance, (bool, FeatureRelevance)):
            raise ValueError(f"relevance must be True, False or a learners.FeatureRelevance, got {self.relevance!r}")
        self.router_configs()  # every method value built once, so a bad combination fails here, not in a trace

    def router_configs(self) -> list[RouterConfig]:
        # Cross-fitted nuisances build their all-rows Gram as the baselines' fits do, so the
        # compiled study computes it, and its eigendecomposition, once per run for all methods.
        if self.learner == "rff":
            learner, effect = dataclasses.replace(RandomFeatureRidge(n_features=self.n_features_rff), _direct_moments=True), {}
        else:
            learner = named(self.learner)
            if hasattr(learner, "n_features"):
                learner = dataclasses.replace(learner, n_features=self.n_features_rff)
            effect = {"effect": learner}
        return [
            RouterConfig(method=method.with_learners(outcome=learner, n_folds=self.n_folds, **effect),
                         quality_learner=learner, standardize=self.standardize,
                         relevance=self.relevance_value)
            for method in self.method_values()
        ]

    @property
    def relevance_value(self) -> FeatureRelevance | None:
        """The feature relevance of every method (``True``: ``FeatureRelevance()``), or None."""
        if isinstance(self.relevance, FeatureRelevance):
            return self.relevance
        return FeatureRelevance() if self.relevance else None

    @property
    def method_names(self) -> tuple[str, ...]:
        """The methods' names, in order (a preset's name, or the name given with a value)."""
        return tuple(m if isinstance(m, str) else m[0] for m in self.methods)

    def method_values(self) -> list:
        """The router method values, in order (each still to be given the study's learners)."""
        return [PRESETS[m] if isinstance(m, str) else m[1] for m in self.methods]


class StudyResult(NamedTuple):
    """Per-run outputs of a study (host NumPy arrays).

    Attributes
    ----------
    methods : tuple of M method names.
    grid : (G,) usage grid.
    efficiency : (R, M, G) total efficiency (NaN past each run's stop).
    random : (R, G) the random router's total efficiency.
    oracle : (R,) total positive true gain.
    rmse : (R, M) ψ̂ RMSE against the true gain on the test queries.
    nonfinite : (R, M) int, test queries whose ψ̂ is NaN or infinite (0 in a sound run; the command
        line refuses to write results otherwise).
    seconds : wall time including compilation; compile_seconds : the first batch's.
    band : (R, 3, G) with ``config.bootstrap``: each run's within-run band (lower, upper)
        for the bootstrapped method's estimated efficiency gain, and the true gain of its
        ranking (against the expected random router); None otherwise.
    """

    methods: tuple
    grid: np.ndarray
    efficiency: np.ndarray
    random: np.ndarray
    oracle: np.ndarray
    rmse: np.ndarray
    seconds: float
    compile_seconds: float
    band: np.ndarray | None = None
    nonfinite: np.ndarray | None = None


class StudyHyper(NamedTuple):
    """A study's numbers as arrays (a pytree): what a sweep may change without recompiling.

    Attributes
    ----------
    routers : one RouterHyper per method (λ = ``preference_weight``; the learners' defaults).
    simulation : ``SimulationConfig.numbers()`` (unused on real data).
    """

    routers: tuple
    simulation: dict


def study_hyper(config: StudyConfig) -> StudyHyper:
    """The numbers of ``config`` as arrays, for the program compiled for ``learners.structure(config)``."""
    lam = jnp.asarray(config.preference_weight, jnp.float32)
    routers = tuple(default_hyper(rc)._replace(preference_weight=lam) for rc in config.router_configs())
    return StudyHyper(routers, config.simulation.numbers())


class RunInputs(NamedTuple):
    """What one run fits and scores on: its fit and random-router keys, the training data, every training
    row's gold label (All-Golden's), and the test queries with their true gains."""

    k_fit: PRNGKey
    k_rand: PRNGKey
    data: Dataset
    gold_label: Array
    test_features: Array
    truth: Array


def one_run(key: PRNGKey, config: StudyConfig, hyper: StudyHyper | None = None) -> tuple:
    """Simulate one dataset, fit every method, and score it. Pure; vmap over keys.

    ``hyper`` (default: ``study_hyper(config)``) carries the numbers, so ``config`` may be a structure.
    """
    hyper = study_hyper(config) if hyper is None else hyper
    return _run(_simulated(key, config, hyper), config, hyper)


def _simulated(key: PRNGKey, config: StudyConfig, hyper: StudyHyper) -> RunInputs:
    k_sim, k_fit, k_rand = jax.random.split(key, 3)
    design = dataclasses.replace(config.simulation, **hyper.simulation)
    sim = simulate(k_sim, config.n_gold, config.n_preference, config.n_test, design)
    return RunInputs(k_fit, k_rand, sim.data, sim.gold_label, sim.test_features, sim.test_truth.quality_gain)


def _searched(config: StudyConfig) -> list:
    """For each method, the method whose relevance search it uses (the first of those that share one,
    :func:`shares_relevance`), or ``None`` when it has no relevance or searches inside its own fit (a
    cross-validated λ searches per fold)."""
    out, shared = [], None
    for i, rc in enumerate(config.router_configs()):
        if rc.relevance is None or hasattr(rc.method, "select_weight"):
            out.append(None)
        elif shares_relevance(rc):
            shared = i if shared is None else shared
            out.append(shared)
        else:
            out.append(i)
    return out


def _distinct(searched: list) -> list:
    """The methods whose searches run (:func:`_searched`'s entries), each once, in order of first use."""
    return list(dict.fromkeys(s for s in searched if s is not None))


def _relevances(inputs: RunInputs, config: StudyConfig, hyper: StudyHyper) -> tuple:
    """Each method's learned relevance (its ``RouterHyper.relevance`` with the ``lengthscale``; ``None`` where
    :func:`_searched` says so): one search per distinct entry, the one the method's own fit would run (to float
    rounding: the distinct searches are vmapped together)."""
    return _expand(_distinct_relevances(inputs, config, hyper), config)


def _distinct_relevances(inputs: RunInputs, config: StudyConfig, hyper: StudyHyper) -> tuple:
    """The distinct searches of :func:`_searched`, in order of first use (one vmapped search for all of them:
    compiled once, not once per distinct search)."""
    configs, distinct = config.router_configs(), _distinct(_searched(config))
    if not distinct:
        return ()
    return tuple(learn_relevances(inputs.k_fit, inputs.data, [configs[i] for i in distinct],
                                  [hyper.routers[i] for i in distinct], inputs.gold_label))


def _expand(learned: tuple, config: StudyConfig) -> tuple:
    """Each method's entry of the distinct searches ``learned``: the methods that share a search get the very
    same arrays, so that under ``jit`` their equal preprocessing and nuisance fits are computed once (XLA
    merges equal computations on equal operands, not on equal values)."""
    searched = _searched(config)
    found = dict(zip(_distinct(searched), learned))
    return tuple(None if s is None else found[s] for s in searched)


def _run(inputs: RunInputs, config: StudyConfig, hyper: StudyHyper) -> tuple:
    """One run's stages in order, unbatched (:func:`_compiled` runs the same stages vmapped over a batch of
    runs, with the relevance searches under ``lax.map``)."""
    relevances = _relevances(inputs, config, hyper)
    targets = _targets(inputs, config, hyper, relevances)
    return _fit_and_score(inputs, config, hyper, relevances, targets, _quality_searches(inputs, config, hyper, targets))


def _targets(inputs: RunInputs, config: StudyConfig, hyper: StudyHyper, relevances: tuple) -> tuple:
    """The ``Targets`` of each method whose ψ̂ learns its own relevance (``router.searches_quality``), ``None``
    for the others (they fit in one piece in :func:`_fit_and_score`)."""
    return tuple(fit_targets(inputs.k_fit, inputs.data, rc, rh._replace(relevance=rel), inputs.gold_label)
                 if searches_quality(rc) else None
                 for rc, rh, rel in zip(config.router_configs(), hyper.routers, relevances))


def _quality_searches(inputs: RunInputs, config: StudyConfig, hyper: StudyHyper, targets: tuple) -> tuple:
    """ψ̂'s own relevance for each method with :func:`_targets` (``{}`` for the others), the searches vmapped over
    those methods (one compiled search)."""
    configs = config.router_configs()
    split = [i for i, t in enumerate(targets) if t is not None]
    if not split:
        return tuple({} for _ in configs)
    stack = lambda *a: jnp.stack(a)  # noqa: E731
    tw = jax.tree_util.tree_map(stack, *[(targets[i].target, targets[i].weight) for i in split])
    qh = jax.tree_util.tree_map(stack, *[hyper.routers[i] for i in split])
    first = configs[split[0]]
    learned = jax.vmap(lambda t, w, h: quality_relevance(inputs.k_fit, inputs.data, first, h, t, w))(*tw, qh)
    out = [{} for _ in configs]
    for j, i in enumerate(split):
        out[i] = jax.tree_util.tree_map(lambda a, j=j: a[j], learned)
    return tuple(out)


def _fit_and_score(inputs: RunInputs, config: StudyConfig, hyper: StudyHyper, relevances: tuple, targets: tuple,
                   quality_relevances: tuple) -> tuple:
    """Fit every method on ``inputs.data`` (with the relevances of :func:`_relevances`, the targets of
    :func:`_targets` and ψ̂'s relevances of :func:`_quality_searches`), rank the test queries, and score
    against ``inputs.truth``."""
    k_fit, k_rand, data, gold_label, test_features, truth = inputs
    scores = []
    configs = config.router_configs()
    for rc, rh, rel, tg, qrel in zip(configs, hyper.routers, relevances, targets, quality_relevances):
        rh = rh if rel is None else rh._replace(relevance=rel)
        if tg is None:
            fit, _ = fit_router(k_fit, data, rc, rh, gold_label=gold_label)
        else:
            fit, _ = finish_fit(k_fit, data, rc, rh, tg, qrel, gold_label)
        scores.append(predict_quality(rc, fit, test_features))
    scores = jnp.stack(scores)
    grid = jnp.asarray(USAGE_GRID, truth.dtype)
    curves = run_curves(k_rand, scores, truth, grid)
    rmse = jnp.sqrt(jnp.mean((scores - truth[None, :]) ** 2, axis=1))
    nonfinite = jnp.sum(~jnp.isfinite(scores), axis=1).astype(jnp.int32)  # (M,) per method, never silent
    if not config.bootstrap:
        return curves.efficiency, curves.random, curves.oracle, rmse, nonfinite
    m = config.method_names.index(config.bootstrap_method)
    W = bootstrap_weights(jax.random.fold_in(k_rand, 1), data.is_gold, config.bootstrap, mask=data.weight > 0)
    # ``hyper`` holds no learned relevance: every replicate learns its own, and the band carries that uncertainty.
    draws = bootstrap_predict(k_fit, data, test_features, W, configs[m], hyper.routers[m], chunk=4)
    eg_draws, eg_point = efficiency_gain_draws(draws, scores[m], grid)
    lo, hi = interval(eg_draws, eg_point, config.bootstrap_level, "percentile")
    band = jnp.stack([lo, hi, efficiency_gain(truth, scores[m], grid)])
    return curves.efficiency, curves.random, curves.oracle, rmse, nonfinite, band


def pool_run(key: PRNGKey, embedding: Array, gold_gain: Array, preference_label: Array, config: StudyConfig,
             hyper: StudyHyper | None = None) -> tuple:
    """One run of the paper's protocol on a fixed pool of real queries. Pure; vmap over keys.

    A random split gives ``n_test`` test queries, ``n_gold`` gold queries and the rest
    as preference queries (all pool rows stay in the arrays; test rows get weight 0, so
    shapes are fixed). Features are the top ``n_components`` principal components of the
    embeddings, fitted on the training rows of this run. Test queries are scored with
    their real gold gains; the RMSE is against those labels. ``hyper`` as in :func:`one_run`.
    """
    hyper = study_hyper(config) if hyper is None else hyper
    return _run(_pooled(key, (embedding, gold_gain, preference_label), config), config, hyper)


def _pooled(key: PRNGKey, pool: tuple, config: StudyConfig) -> RunInputs:
    embedding, gold_gain, preference_label = pool
    N = embedding.shape[0]
    k_split, k_fit, k_rand = jax.random.split(key, 3)
    perm = jax.random.permutation(k_split, N)
    test = perm[: config.n_test]
    is_gold = jnp.zeros((N,), embedding.dtype).at[perm[config.n_test: config.n_test + config.n_gold]].set(1.0)
    train = jnp.ones((N,), embedding.dtype).at[test].set(0.0)
    mean = jnp.matmul(train, embedding, precision="highest") / jnp.sum(train)
    centred = embedding - mean[None, :]
    cov = jnp.matmul(centred.T, train[:, None] * centred, precision="highest") / jnp.sum(train)
    _, vecs = jnp.linalg.eigh(cov)
    X = jnp.matmul(centred, vecs[:, ::-1][:, : config.n_components], precision="highest")
    data = Dataset(X, is_gold, jnp.where(is_gold > 0.5, gold_gain, preference_label), train)
    return RunInputs(k_fit, k_rand, data, gold_gain, X[test], gold_gain[test])


def run_keys(key: PRNGKey, n_runs: int) -> Array:
    """Run r's key is ``fold_in(key, r)``: a run's key does not depend on the batching or the run count."""
    return jax.vmap(lambda r: jax.random.fold_in(key, r))(jnp.arange(n_runs))


def program_key(config: StudyConfig) -> StudyConfig:
    """What the compiled study program depends on: ``config`` without its numbers and run count. Studies
    with equal keys (a λ, judge-strength or noise axis of a sweep) share one program."""
    return dataclasses.replace(structure(config), n_runs=1)


def _layout(hyper: StudyHyper) -> tuple[list, tuple]:
    """``hyper``'s leaves with those equal at the same place of different methods' ``RouterHyper`` given once,
    and the static ``(treedef, index)`` that rebuilds ``hyper`` from them.

    A jitted function gets one parameter per leaf, and XLA merges equal computations only on equal operands:
    with their shared numbers as one parameter, methods that fit the same nuisances (the Meta-Routers'
    propensity and outcome models) fit them once per run."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(hyper)
    slots, index, unique = {}, [], []
    for path, leaf in flat:
        a = np.asarray(leaf)
        routers = isinstance(path[0], jax.tree_util.GetAttrKey) and path[0].name == "routers"
        place = jax.tree_util.keystr(path[2:] if routers else path)
        slot = slots.setdefault((routers, place, a.dtype.str, a.shape, a.tobytes()), len(unique))
        if slot == len(unique):
            unique.append(leaf)
        index.append(slot)
    return unique, (treedef, tuple(index))


@functools.lru_cache(maxsize=32)
def _compiled(config: StudyConfig, devices: tuple, run_fn: Callable | None, pooled: bool, impl: str,
              layout: tuple):
    """The jitted, sharded batch program ``(key data, hyper leaves, pool) -> outputs`` for a program key and
    a :func:`_layout` of its hyper-parameters; cached so repeated studies do not recompile. Keys enter as raw
    key data (``impl``), which every process of a multi-controller run can build its shards of."""
    mesh = Mesh(np.asarray(devices), ("runs",))
    spec = PartitionSpec("runs")
    wrap = functools.partial(jax.random.wrap_key_data, impl=impl)
    treedef, index = layout
    if run_fn is not None:
        batch = jax.vmap(lambda raw, h, pool: run_fn(wrap(raw)), in_axes=(0, None, None))
    else:
        def batch(raw, leaves, pool):
            h = jax.tree_util.tree_unflatten(treedef, [leaves[i] for i in index])
            if pooled:
                inputs = jax.vmap(lambda r: _pooled(wrap(r), pool, config))(raw)
            else:
                inputs = jax.vmap(lambda r: _simulated(wrap(r), config, h))(raw)
            # The relevance searches run one run at a time (lax.map), so that a run's bits do not depend on
            # its batch: a vmapped Adam search rounds differently by batch shape (docs/design.md).
            # Only the distinct searches cross the map and the vmap, expanded inside (:func:`_expand`).
            if any(s is not None for s in _searched(config)):
                learned = jax.lax.map(lambda inp: _distinct_relevances(inp, config, h), inputs)
            else:
                learned = ()
            targets = jax.vmap(lambda inp, rel: _targets(inp, config, h, _expand(rel, config)))(inputs, learned)
            # ψ̂'s own searches (Meta-Routers), on the targets of the bias stages: one run at a time, as above.
            qrel = jax.lax.map(lambda a: _quality_searches(a[0], config, h, a[1]), (inputs, targets))
            return jax.vmap(lambda inp, rel, tg, q: _fit_and_score(inp, config, h, _expand(rel, config), tg, q))(
                inputs, learned, targets, qrel)

    # On CPU the study program's time goes to LAPACK and matrix products, not to XLA's own
    # element-wise kernels, so LLVM optimisation level 1 compiles it faster at the same run
    # time (docs/design.md).
    options = {"xla_backend_optimization_level": 1} if devices[0].platform == "cpu" else None
    batched = jax.jit(
        jax.shard_map(batch, mesh=mesh, in_specs=(spec, PartitionSpec(), PartitionSpec()),
                      out_specs=spec, check_vma=False),
        compiler_options=options,
    )
    return batched, mesh


def _program(config: StudyConfig, devices: tuple, run_fn: Callable | None, pooled: bool, impl: str = "threefry2x32"):
    """``(batched, mesh, hyper leaves)``: the compiled program of ``config`` (:func:`_compiled`) and the leaves it
    takes for ``config``'s numbers."""
    leaves, layout = _layout(study_hyper(config))
    return (*_compiled(program_key(config), devices, run_fn, pooled, impl, layout), leaves)


def _global(x, mesh: Mesh, spec: PartitionSpec):
    """A host array as a global array on ``mesh``: each process supplies the shards of its own devices."""
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, NamedSharding(mesh, spec), lambda index: x[index])


def _host(x) -> np.ndarray:
    """A (possibly multi-process) global array as a NumPy array on every process."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def run_study(
    key: PRNGKey,
    config: StudyConfig,
    run_fn: Callable | None = None,
    progress: bool = True,
    devices=None,
    pool: tuple | None = None,
) -> StudyResult:
    """Run ``config.n_runs`` Monte-Carlo runs of every method, batched and sharded.

    Parameters
    ----------
    key : PRNGKey
    config : StudyConfig
    run_fn : optional ``(key) -> (efficiency, random, oracle, rmse, nonfinite[, band])`` replacing the
        simulator run; must be pure and vmappable (its closure is compiled in: a new function, a new
        program).
    pool : optional ``(embedding, gold_gain, preference_label)`` arrays of a real-data pool: each run is
        :func:`pool_run` on it. The arrays are arguments of the program, so pools of the same shape (another
        judge) share it.
    progress : a progress bar (tqdm, on stderr) advanced after each batch.
    devices : devices to shard the run axis over (by default every device of every process: under
        ``jax.distributed`` each process runs its shards and gets every run's results).
    """
    devices = jax.devices() if devices is None else list(devices)
    n_dev = len(devices)
    # Every device runs the same compiled program on a local batch of `local` runs
    # (shard_map), so a study's bits do not depend on how many devices share it.
    local = min(config.batch_size, -(-config.n_runs // n_dev))  # never compute runs that are thrown away
    batch = local * n_dev
    impl = str(jax.random.key_impl(key))
    batched, mesh, leaves = _program(config, tuple(devices), run_fn, pool is not None, impl)
    replicated = PartitionSpec()
    hyper = [_global(a, mesh, replicated) for a in leaves]
    pool = () if pool is None else tuple(_global(a, mesh, replicated) for a in pool)
    n_batches = -(-config.n_runs // batch)
    # Keys for whole batches; run r's key does not depend on the total, extras are dropped.
    keys = np.asarray(jax.random.key_data(run_keys(key, n_batches * batch)))
    outs = []
    t0 = time.perf_counter()
    compile_s = 0.0
    bar = None
    if progress:  # tqdm comes with numpyro: a bar costs no dependency
        from tqdm import tqdm

        bar = tqdm(total=config.n_runs, desc="mrjax: study runs", unit="run", leave=False, file=sys.stderr,
                   disable=jax.process_index() != 0)
    try:
        for b in range(n_batches):
            kb = _global(keys[b * batch:(b + 1) * batch], mesh, PartitionSpec("runs"))
            out = jax.block_until_ready(batched(kb, hyper, pool))
            outs.append(jax.tree_util.tree_map(_host, out))
            if b == 0:
                compile_s = time.perf_counter() - t0
            if bar is not None:
                bar.update(min((b + 1) * batch, config.n_runs) - bar.n)
    finally:
        if bar is not None:
            bar.close()
    parts = [np.concatenate(p)[: config.n_runs] for p in zip(*outs)]
    band = parts[5] if len(parts) > 5 else None
    return StudyResult(config.method_names, USAGE_GRID, *parts[:4], time.perf_counter() - t0, compile_s, band,
                       parts[4])
