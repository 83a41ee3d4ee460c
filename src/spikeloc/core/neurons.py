r"""Neuron dynamics as small typed step functions (units: seconds).

Every neuron model follows one contract (:class:`NeuronModel`): a NamedTuple of parameters, a
NamedTuple state, ``initial_state(batch_shape, p)`` and
``step(input_current, state, p) -> (spikes, new_state)``. The network
(:class:`spikeloc.core.models.SNN`) owns weights and the time loop; these steps are the oracle
that the fused engine (:mod:`spikeloc.engine`, kernels generated from
:mod:`spikeloc.engine.lif_spec`) is tested against.

Leaky integrate-and-fire (LIF), exact exponential decay over one bin of ``dt_s``:

.. math::

    \tau \frac{dv}{dt} = -v + \tau \sum_i w_i \delta(t - t_i), \qquad \alpha = e^{-dt/\tau}

discretised and implemented, with input current ``h_t`` (already the weighted input spikes):

* ``update_order="published"`` (the COMOB / SPyTorch notebooks): the spike comes from the
  *previous* potential, so the reset acts one step late and spikes come in doublets::

      s_{t+1} = H(v_t - theta)
      v_{t+1} = (alpha * v_t + h_t) * (1 - s_t)          # reset="zero"
      v_{t+1} =  alpha * v_t + h_t - theta * s_t         # reset="subtract"

  with ``v_0 = 0``, ``s_0 = 0`` (hence also ``s_1 = 0``); the recorded spike train is
  ``[s_0, s_1, ..., s_{T-1}]``.
* ``update_order="immediate"`` (filter-and-fire notebook): integrate, then spike and reset on
  the new potential in the same step::

      u_t = alpha * v_{t-1} + h_t
      s_t = H(u_t - theta)
      v_t = u_t * (1 - s_t)  |  u_t - theta * s_t

Adaptive (dynamic) threshold (``Dynamic_threshold.ipynb``): ``theta_t = theta + beta_a * a_t``
with ``a`` a low-pass of the neuron's own spikes, ``a <- rho * a + (1 - rho) * s``,
``rho = exp(-dt/tau_a)``, updated with the spike just emitted.

Leaky integrator (non-spiking readout): ``v_{t+1} = alpha * v_t + h_t``, ``v_0 = 0``, recorded
``[v_0, ..., v_{T-1}]`` (the published readout never sees the last input bin).

Surrogate gradients: forward Heaviside ``H(x) = 1[x > 0]``; backward either the derivative of
a sigmoid of slope ``beta`` (``beta * sig(beta x) * (1 - sig(beta x))``, ``beta = 5`` as
published) or SuperSpike ``1 / (beta |x| + 1)^2`` (``beta = 100`` in the notebooks' commented
line).
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple, Protocol

import torch

__all__ = [
    "SurrogateSpike",
    "spike_fn",
    "surrogate_grad",
    "LIFParameters",
    "LIFState",
    "lif_initial_state",
    "lif_step",
    "LIParameters",
    "LIState",
    "li_initial_state",
    "li_step",
    "NeuronModel",
]

SurrogateKind = Literal["sigmoid", "superspike"]
UpdateOrder = Literal["published", "immediate"]
ResetMode = Literal["zero", "subtract"]


def surrogate_grad(x: torch.Tensor, kind: SurrogateKind = "sigmoid", beta: float = 5.0):
    """The surrogate derivative dS/dx used in the backward pass."""
    if kind == "sigmoid":
        sg = torch.sigmoid(beta * x)
        return beta * sg * (1 - sg)
    if kind == "superspike":
        return 1.0 / (beta * x.abs() + 1.0) ** 2
    raise ValueError(f"unknown surrogate {kind!r}")


class SurrogateSpike(torch.autograd.Function):
    """Heaviside forward, surrogate derivative backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, kind: str, beta: float):  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.kind = kind
        ctx.beta = beta
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad_out * surrogate_grad(x, ctx.kind, ctx.beta), None, None


def spike_fn(x: torch.Tensor, kind: SurrogateKind = "sigmoid", beta: float = 5.0) -> torch.Tensor:
    """Spike ``H(x)`` with a surrogate gradient (``x = v - threshold``)."""
    return SurrogateSpike.apply(x, kind, beta)


class LIFParameters(NamedTuple):
    """LIF parameters. ``tau_s``/``dt_s`` in seconds; ``threshold`` dimensionless."""

    tau_s: float = 0.02
    dt_s: float = 1e-3
    threshold: float = 1.0
    reset: ResetMode = "zero"
    update_order: UpdateOrder = "published"
    detach_reset: bool = False  # published: the gradient flows through the reset factor
    surrogate: SurrogateKind = "sigmoid"
    beta: float = 5.0
    adaptive_beta: float = 0.0  # >0 switches on the adaptive threshold
    adaptive_tau_s: float = 0.02

    @property
    def alpha(self) -> float:
        """Membrane decay per step ``exp(-dt/tau)``."""
        return math.exp(-self.dt_s / self.tau_s)

    @property
    def rho(self) -> float:
        """Threshold-adaptation decay per step ``exp(-dt/tau_a)``."""
        return math.exp(-self.dt_s / self.adaptive_tau_s)


class LIFState(NamedTuple):
    """Membrane potential ``v``, last spike ``s`` and threshold adaptation ``a``."""

    v: torch.Tensor
    s: torch.Tensor
    a: torch.Tensor


def lif_initial_state(
    batch_shape: tuple[int, ...], p: LIFParameters, *, device=None, dtype=torch.float32
) -> LIFState:
    """All zeros: ``v_0 = 0``, ``s_0 = 0``, ``a_0 = 0``."""
    z = torch.zeros(batch_shape, device=device, dtype=dtype)
    return LIFState(z, z, z)


def lif_step(h_t: torch.Tensor, state: LIFState, p: LIFParameters) -> tuple[torch.Tensor, LIFState]:
    """One LIF step; returns the spike *recorded for the next time index* and the new state.

    For ``update_order="published"`` the returned spike is ``s_{t+1} = H(v_t - theta_t)`` (the
    caller records ``s_0 = 0`` first); for ``"immediate"`` it is ``s_t``.
    """
    v, s, a = state
    alpha = p.alpha
    thr = p.threshold + p.adaptive_beta * a if p.adaptive_beta else p.threshold
    if p.update_order == "published":
        r = s.detach() if p.detach_reset else s
        if p.reset == "zero":
            v_new = (alpha * v + h_t) * (1 - r)
        else:
            v_new = alpha * v + h_t - p.threshold * r
        s_new = spike_fn(v - thr, p.surrogate, p.beta)
    elif p.update_order == "immediate":
        u = alpha * v + h_t
        s_new = spike_fn(u - thr, p.surrogate, p.beta)
        r = s_new.detach() if p.detach_reset else s_new
        v_new = u * (1 - r) if p.reset == "zero" else u - p.threshold * r
    else:
        raise ValueError(f"unknown update_order {p.update_order!r}")
    a_new = p.rho * a + (1 - p.rho) * s_new if p.adaptive_beta else a
    return s_new, LIFState(v_new, s_new, a_new)


class LIParameters(NamedTuple):
    """Non-spiking leaky integrator."""

    tau_s: float = 0.02
    dt_s: float = 1e-3

    @property
    def alpha(self) -> float:
        return math.exp(-self.dt_s / self.tau_s)


class LIState(NamedTuple):
    v: torch.Tensor


def li_initial_state(
    batch_shape: tuple[int, ...], p: LIParameters, *, device=None, dtype=torch.float32
) -> LIState:
    return LIState(torch.zeros(batch_shape, device=device, dtype=dtype))


def li_step(h_t: torch.Tensor, state: LIState, p: LIParameters) -> tuple[torch.Tensor, LIState]:
    """``v_{t+1} = alpha v_t + h_t``; returns ``(v_{t+1}, state)``."""
    v = p.alpha * state.v + h_t
    return v, LIState(v)


class NeuronModel(Protocol):
    """The contract every neuron model follows (one function + one NamedTuple + one test)."""

    def initial_state(self, batch_shape: tuple[int, ...], p, *, device=None, dtype=None): ...

    def step(self, h_t: torch.Tensor, state, p) -> tuple[torch.Tensor, tuple]: ...
