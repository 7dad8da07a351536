"""A small multilayer perceptron (flax) trained with optax in a ``lax.scan`` loop.

flax lives here only; optax also drives the relevance kernel's length-scale search (``_relevance``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from mrjax._typing import Array, Hyper, PRNGKey
from mrjax._hyper import hyper_field
from mrjax.learners._base import check_xyw, weighted_mean


class _Net(nn.Module):
    hidden: Sequence[int]

    @nn.compact
    def __call__(self, x):
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(1)(x)[:, 0]


class MLPParams(NamedTuple):
    """A fitted MLP.

    Attributes
    ----------
    variables : flax variables pytree (of the network on standardised features and labels).
    loss_trace : (steps,) array of the mini-batch training loss, on the standardised labels (a diagnostic).
    center, scale : (d,) the features' weighted means and standard deviations the network's inputs are
        standardised by (a constant feature: scale 1).
    y_center, y_scale : () the same of the labels (regression; 0 and 1 for classification).
    """

    variables: Any
    loss_trace: Array
    center: Array
    scale: Array
    y_center: Array
    y_scale: Array


def _spread(v: Array, w: Array) -> tuple[Array, Array]:
    """The weighted mean and standard deviation of ``v`` over its rows (a zero deviation reads as 1)."""
    mean = weighted_mean(v, w)
    sd = jnp.sqrt(weighted_mean((v - mean[None]) ** 2, w))
    return mean, jnp.where(sd > 0, sd, 1.0)


@dataclasses.dataclass(frozen=True)
class MLP:
    """A ReLU MLP trained by Adam on weighted squared error or weighted log-loss.

    Mini-batches are drawn with probability proportional to the sample weights, so
    the stochastic gradient is unbiased for the weighted loss even when the weighted
    rows are rare (e.g. 100 gold rows among 400k). The network sees features standardised by their
    weighted means and deviations, and regresses standardised labels: Adam's steps and the weight decay
    then mean the same on any units (a label offset of 10³ or features offset by 10 broke the raw fit).

    Attributes
    ----------
    hidden : hidden layer widths (static).
    task : ``"regression"`` or ``"classification"``.
    steps, batch_size : training length and mini-batch size (static).
    learning_rate, weight_decay : hyper-parameters (sweepable).
    """

    hidden: tuple[int, ...] = (64, 64)
    task: str = "regression"
    steps: int = 500
    batch_size: int = 256
    learning_rate: float = hyper_field(3e-3)
    weight_decay: float = hyper_field(1e-4)

    def __post_init__(self):
        if self.task not in ("regression", "classification"):
            raise ValueError(f"MLP task must be 'regression' or 'classification', got {self.task!r}")

    def hyper(self) -> dict[str, Array]:
        return {
            "learning_rate": jnp.asarray(self.learning_rate, jnp.float32),
            "weight_decay": jnp.asarray(self.weight_decay, jnp.float32),
        }

    def fit(self, key: PRNGKey, X: Array, y: Array, weight: Array, hyper: Hyper | None = None) -> MLPParams:
        check_xyw(X, y, weight)
        hyper = self.hyper() if hyper is None else hyper
        net = _Net(tuple(self.hidden))
        k_init, k_train = jax.random.split(key)
        center, scale = _spread(X, weight)
        if self.task == "regression":
            y_center, y_scale = _spread(y, weight)
        else:
            y_center, y_scale = jnp.zeros((), y.dtype), jnp.ones((), y.dtype)
        X, y = (X - center[None, :]) / scale[None, :], (y - y_center) / y_scale
        variables = net.init(k_init, X[:1])
        opt = optax.adam(hyper["learning_rate"])
        cdf = jnp.cumsum(weight)
        cdf = cdf / cdf[-1]

        def loss_fn(v, xb, yb):
            out = net.apply(v, xb)
            if self.task == "regression":
                loss = jnp.mean((out - yb) ** 2)
            else:
                loss = jnp.mean(optax.sigmoid_binary_cross_entropy(out, yb))
            l2 = sum(jnp.sum(p**2) for p in jax.tree_util.tree_leaves(v))
            return loss + hyper["weight_decay"] * l2

        def step(carry, k):
            v, state = carry
            idx = jnp.searchsorted(cdf, jax.random.uniform(k, (self.batch_size,)), side="right")
            idx = jnp.clip(idx, 0, X.shape[0] - 1)
            loss, grads = jax.value_and_grad(loss_fn)(v, X[idx], y[idx])
            updates, state = opt.update(grads, state, v)
            return (optax.apply_updates(v, updates), state), loss

        keys = jax.random.split(k_train, self.steps)
        (variables, _), trace = jax.lax.scan(step, (variables, opt.init(variables)), keys)
        return MLPParams(variables, trace, center, scale, y_center, y_scale)

    def predict(self, params: MLPParams, X: Array) -> Array:
        out = _Net(tuple(self.hidden)).apply(params.variables, (X - params.center[None, :]) / params.scale[None, :])
        return params.y_center + params.y_scale * out if self.task == "regression" else jax.nn.sigmoid(out)
