"""The CATE learners by name: the one table the facade's ``cate="dr"``, the study presets and the
command line read. A new kind is one module and one line here."""
from mrjax.cate._dr import DRLearner
from mrjax.cate._r import RLearner
from mrjax.cate._s import SLearner
from mrjax.cate._t import TLearner
from mrjax.cate._x import XLearner

CATE_LEARNERS = {"r": RLearner, "dr": DRLearner, "x": XLearner, "t": TLearner, "s": SLearner}


def authors_cate(kind: str, **learners):
    """The reproduction switch: the authors' illustrative code (``yichistat/Meta-router``).

    In-sample nuisances (no cross-fitting), propensity clipped to [0.1, 0.9] for the
    R-learner and [0.05, 0.95] for the DR-learner, pseudo-outcome mask 0.05 and Δ̂
    clipped to [−1.2, 1.2]. Not the default: in-sample nuisances overfit. ``learners``
    are the learner's fields (``propensity``, ``outcome``, ``effect``).

    Returns
    -------
    learner : RLearner or DRLearner
    hyper : CateHyper
    """
    import jax.numpy as jnp

    if kind not in ("r", "dr"):
        raise ValueError(f"the authors' code has only the 'r' and 'dr' learners, got {kind!r}")
    learner = CATE_LEARNERS[kind](n_folds=0, **learners)
    clip = [0.1, 0.9] if kind == "r" else [0.05, 0.95]
    return learner, learner.hyper()._replace(
        propensity_clip=jnp.asarray(clip, jnp.float32),
        bias_clip=jnp.asarray(1.2, jnp.float32),
        pseudo_mask=jnp.asarray(0.05, jnp.float32),
    )
