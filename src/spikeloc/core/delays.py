"""Learnable axonal delays: the differentiable delay layer (DDL) and the DCLS synapse.

DDL (``research/Solving_problem_with_delay_learning.ipynb``): one delay per channel, rounded
and clamped in the forward pass with a straight-through backward; the delayed train is
``y[t] = x[t + d]`` built as a translation of the sampling grid followed by 1D linear
interpolation between ``floor`` and ``floor + 1`` (zero outside). For an integer ``d`` the
output is an exact shift and the gradient with respect to ``d`` is the local difference
``x[t + d + 1] - x[t + d]``.

DCLS (``research/Quick_Start_Delay_DCLS.ipynb``): a ``DCLS.construct.modules.Dcls1d`` layer
(PyPI ``dcls`` 0.1.1) with one element per synapse (weight ``w``, position ``P``), causal
padding, 'gauss' kernels while training and rounded 'max' kernels (one integer tap) at
evaluation. :class:`DCLSNetwork` puts two of them around the fused LIF engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from spikeloc.engine import LIFSpec, lif_sequence
from spikeloc.engine.layers import li_trace

# ======================================================================================
# Differentiable delay layer
# ======================================================================================


class RoundClamp(torch.autograd.Function):
    """``clamp(round(d), -max_delay, max_delay)`` forward, identity backward
    (the notebook's ``DelayUpdate``)."""

    @staticmethod
    def forward(ctx, d: torch.Tensor, max_delay: float):  # type: ignore[override]
        return torch.clamp(torch.round(d), -max_delay, max_delay)

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        return g, None


@dataclass(frozen=True)
class ShiftTrace:
    """The intermediate steps of :func:`shift_linear` (for figures and tests)."""

    grid: torch.Tensor  # normalised target grid x_t on [-1, 1], (T,)
    translated: torch.Tensor  # x_t + 2 d / (T - 1), (..., T)
    source: torch.Tensor  # the source positions t + d, (..., T)
    left: torch.Tensor  # floor(source)
    w_left: torch.Tensor  # interpolation weight of x[left]  (right - source)
    w_right: torch.Tensor  # interpolation weight of x[left + 1]  (source - left)
    output: torch.Tensor


def shift_linear(x: torch.Tensor, d: torch.Tensor, *, trace: bool = False):
    """``y[..., t] = x[..., t + d]`` by translation and 1D linear interpolation.

    ``x`` (..., T); ``d`` broadcastable to ``x.shape[:-1]`` (real-valued; the DDL passes
    rounded values). The grid is ``x_t = -1 + 2t/(T-1)``, translated by ``2d/(T-1)`` (the
    affine matrix ``[[1, 0, 2d/(T-1)], [0, 1, 0]]``) and mapped back to the source index
    ``t + d``; values outside ``[0, T-1]`` are zero. Differentiable in ``x`` and ``d``.
    """
    T = x.shape[-1]
    d = torch.as_tensor(d, dtype=x.dtype, device=x.device)
    d = d.expand(x.shape[:-1]).unsqueeze(-1)
    grid = torch.linspace(-1.0, 1.0, T, dtype=x.dtype, device=x.device)
    translated = grid + 2.0 * d / (T - 1)
    # (translated + 1)(T - 1)/2 = t + d exactly in real arithmetic; formed directly so that
    # an integer d gives an integer source in floating point too (exact shift, exact gradient)
    source = torch.arange(T, dtype=x.dtype, device=x.device) + d
    left = torch.floor(source.detach())
    w_right = source - left
    w_left = (left + 1.0) - source
    xp = F.pad(x, (1, 2))  # xp[i + 1] = x[i]; xp[0] and xp[T + 1:] are zero
    out = torch.zeros((), dtype=torch.long, device=x.device)
    li, ri = left.long() + 1, left.long() + 2
    li = torch.where((li >= 0) & (li <= T + 2), li, out)
    ri = torch.where((ri >= 0) & (ri <= T + 2), ri, out)
    xl = torch.gather(xp, -1, li.expand(x.shape))
    xr = torch.gather(xp, -1, ri.expand(x.shape))
    y = w_left * xl + w_right * xr
    if trace:
        return ShiftTrace(grid, translated, source, left, w_left, w_right, y)
    return y


class DelayLayer(nn.Module):
    """One learnable delay per (ear, channel); ``fix_first`` (published: True) learns only
    the second ear's. Input (batch, 2, C, T) -> delayed (batch, 2, C, T)."""

    def __init__(self, n_channels: int, max_delay: int = 20, *, fix_first: bool = True,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.max_delay = int(max_delay)
        self.fix_first = fix_first
        shape = (1, n_channels) if fix_first else (2, n_channels)
        init = torch.randint(1, max_delay, shape, generator=generator).float()
        self.delay = nn.Parameter(init)

    def integer_delays(self) -> torch.Tensor:
        """The delays the forward pass uses (rounded and clamped), (1 or 2, C)."""
        return RoundClamp.apply(self.delay, float(self.max_delay))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.integer_delays()
        if self.fix_first:
            return torch.stack([x[:, 0], shift_linear(x[:, 1], d[0])], dim=1)
        return shift_linear(x, d)


def leaky_integrate(s: torch.Tensor, tau_steps: float) -> torch.Tensor:
    """``u_t = exp(-1/tau) u_{t-1} + s_t`` along the last axis (``u_{-1} = 0``)."""
    a = math.exp(-1.0 / tau_steps)
    T = s.shape[-1]
    k = torch.arange(T, dtype=s.dtype, device=s.device)
    diff = k[:, None] - k[None, :]
    kernel = torch.where(diff >= 0, a ** diff.clamp(min=0), torch.zeros((), dtype=s.dtype))
    return torch.matmul(s, kernel.T)


def coincidence_output(u: torch.Tensor, synapse: str = "subtractive") -> torch.Tensor:
    """The output nodes' values from the two integrated inputs ``u`` (batch, 2, C, T):
    subtractive (published) ``-sum_t (u2 - u1)^2`` or multiplicative ``sum_t u1 u2``."""
    if synapse == "subtractive":
        return -((u[:, 1] - u[:, 0]) ** 2).sum(-1)
    if synapse == "multiplicative":
        return (u[:, 0] * u[:, 1]).sum(-1)
    raise ValueError(f"synapse must be subtractive or multiplicative, not {synapse!r}")


class DDLNetwork(nn.Module):
    """2 inputs per class -> DDL -> per-input leaky integration -> 36 coincidence outputs
    (weights fixed at 1, no bias) -> log-probabilities."""

    def __init__(self, n_classes: int = 36, max_delay: int = 20, *, fix_first: bool = True,
                 synapse: str = "subtractive", integrate_last_step: bool = False,
                 generator: torch.Generator | None = None):
        super().__init__()
        coincidence_output(torch.zeros(1, 2, 1, 1), synapse)  # validate
        self.ddl = DelayLayer(n_classes, max_delay, fix_first=fix_first, generator=generator)
        self.synapse = synapse
        self.n_classes = n_classes
        # the notebook's loop `for t in range(T - 1)` leaves the last step's potential at 0,
        # so the output sums over the first T - 1 steps (published); True: over all T
        self.integrate_last_step = integrate_last_step

    def forward(self, x: torch.Tensor, tau_steps: float) -> torch.Tensor:
        u = leaky_integrate(self.ddl(x), tau_steps)
        if not self.integrate_last_step:
            u = u[..., :-1]
        return F.log_softmax(coincidence_output(u, self.synapse), dim=1)


def tau_schedule(epoch: int, start: float = 40.0, decay: float = 0.005, floor: float = 5.0):
    """The DDL notebook's integration time constant (steps) after ``epoch`` decays: ``tau``
    starts at ``start`` and after every epoch becomes ``tau * exp(-decay)`` if ``tau >=
    floor``, else ``floor`` (the notebook's rule, so below the floor it alternates between
    ``floor * exp(-decay)`` and ``floor``). Epoch ``e`` (0-based) trains with
    ``tau_schedule(e)``; the notebook evaluates with the value after the last epoch's decay,
    ``tau_schedule(epochs)``."""
    tau = float(start)
    step = math.exp(-decay)
    for _ in range(int(epoch)):
        tau = tau * step if tau >= floor else float(floor)
    return tau


# ======================================================================================
# DCLS synapse
# ======================================================================================


def _dcls():
    try:
        from DCLS.construct.modules import Dcls1d
    except ImportError as exc:  # pragma: no cover - the pin is in pyproject
        raise ImportError("the DCLS synapse needs the dcls package (pip install dcls==0.1.1)") from exc
    return Dcls1d


class DCLSSynapse(nn.Module):
    """Weights and delays of an all-to-all projection as one ``Dcls1d`` (kernel_count 1).

    Input (batch, n_in, T) -> currents (batch, n_out, T'): the input is padded causally
    (left ``K - 1``, right ``(K - 1)//2``, the notebook's choice) for ``K`` taps. In 'gauss'
    mode the element is a normalised Gaussian of width ``|SIG| + 0.27`` at ``P + K//2``; in
    'max' mode ``P`` is rounded and ``SIG`` 0, giving one integer tap: the delay of input j
    onto output i is ``K - 1 - (round(P) + K//2)`` steps.
    """

    def __init__(self, n_in: int, n_out: int, taps: int, *, init: str = "kaiming") -> None:
        super().__init__()
        self.taps = int(taps)
        self.conv = _dcls()(n_in, n_out, kernel_count=1, dilated_kernel_size=self.taps,
                            bias=False, version="gauss")
        if init == "kaiming":  # the notebook: kaiming_uniform_(nonlinearity='relu')
            nn.init.kaiming_uniform_(self.conv.weight, nonlinearity="relu")
        self.conv.SIG.requires_grad_(False)
        self.set_sig(self.taps // 2)
        self.mode = "gauss"

    @property
    def weight(self) -> torch.Tensor:
        return self.conv.weight  # (n_out, n_in, 1)

    @property
    def P(self) -> torch.Tensor:
        return self.conv.P  # (1, n_out, n_in, 1)

    def set_sig(self, value: float) -> None:
        with torch.no_grad():
            self.conv.SIG.fill_(float(value))

    @property
    def sig(self) -> float:
        return float(self.conv.SIG.reshape(-1)[0])

    def set_mode(self, mode: str) -> None:
        """'gauss' (training) or 'max' (evaluation: rounded positions, SIG 0)."""
        if mode not in ("gauss", "max"):
            raise ValueError(f"mode must be gauss or max, not {mode!r}")
        self.mode = mode

    def clamp_parameters(self) -> None:
        self.conv.clamp_parameters()

    def kernel(self) -> torch.Tensor:
        """The dense kernel (n_out, n_in, K) the convolution uses in the current mode."""
        c = self.conv
        if self.mode == "gauss":
            c.DCK.version = "gauss"
            return c.DCK(c.weight, c.P, c.SIG)
        c.DCK.version = "max"
        return c.DCK(c.weight, torch.round(c.P), torch.zeros_like(c.SIG))

    def delays(self) -> torch.Tensor:
        """Integer delays in steps (n_out, n_in) of the 'max' mode."""
        return (self.taps - 1 - (torch.round(self.P[0, :, :, 0]) + self.taps // 2)).detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (self.taps - 1, (self.taps - 1) // 2))
        return F.conv1d(x, self.kernel())


class DCLSNetwork(nn.Module):
    """n_in -> DCLS -> LIF (fused engine) -> DCLS -> leaky integrator; the readout is
    ``0.01 * sum_t`` of the integrator over the first ``n_steps`` steps."""

    def __init__(self, n_in: int = 200, n_hidden: int = 30, n_out: int = 12, taps: int = 31,
                 *, tau_s: float = 5e-3, dt_s: float = 1e-3, beta: float = 5.0,
                 n_steps: int = 99) -> None:
        super().__init__()
        self.w1 = DCLSSynapse(n_in, n_hidden, taps)
        self.w2 = DCLSSynapse(n_hidden, n_out, taps)
        self.alpha = math.exp(-dt_s / tau_s)
        self.spec = LIFSpec(alpha=self.alpha, threshold=1.0, beta=beta)
        self.n_steps = int(n_steps)

    def synapses(self) -> tuple[DCLSSynapse, DCLSSynapse]:
        return self.w1, self.w2

    def set_mode(self, mode: str) -> None:
        for s in self.synapses():
            s.set_mode(mode)

    def hidden_spikes(self, x: torch.Tensor) -> torch.Tensor:
        """x (batch, n_in, T) -> hidden spikes (batch, n_hidden, n_steps)."""
        h = self.w1(x)[:, :, : self.n_steps]
        s = lif_sequence(h.permute(2, 0, 1).contiguous(), self.spec)  # (T, batch, n)
        return s.permute(1, 2, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.hidden_spikes(x)
        h2 = self.w2(s)[:, :, : self.n_steps]
        v = li_trace(h2.permute(2, 0, 1), self.alpha, "published")  # (T, batch, out)
        return 0.01 * v.sum(0)
