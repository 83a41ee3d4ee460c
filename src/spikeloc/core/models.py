"""The network of the paper: Poisson inputs -> hidden LIF layer -> readout layer.

``SNN(model_cfg, dt_s)`` builds the model from a plain :class:`~spikeloc.core.config.ModelConfig`;
``build_model(run_cfg)`` from a whole run config. The published basic model and the tutorial
model are the presets ``basic`` and ``tutorial`` of :data:`spikeloc.core.config.PRESETS`.

The forward pass has two interchangeable backends computing the same numbers:
``"reference"`` (a plain autograd time loop over :func:`spikeloc.core.neurons.lif_step`, the oracle)
and ``"fused"`` (:func:`spikeloc.engine.run_lif`: kernels generated from one specification of the
LIF update, hand-derived BPTT in one autograd function and a closed-form readout). ``"auto"`` (the
default) runs the fused engine wherever it covers the neuron, device and dtype, and otherwise the
reference with a warning naming what the engine does not cover (so does ``"fused"``).
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from spikeloc import engine
from spikeloc.core.config import DaleConfig, DendriteConfig, ModelConfig, RunConfig
from spikeloc.core.neurons import (
    LIFParameters,
    LIParameters,
    li_initial_state,
    li_step,
    lif_initial_state,
    lif_step,
)
from spikeloc.engine.outputs import SNNOutput, as_float_spikes

__all__ = [
    "SNNOutput",
    "SNN",
    "build_model",
    "dale_signs",
    "dendrite_kernels",
    "filter_segments",
    "init_bounds",
]


def init_bounds(cfg: ModelConfig) -> tuple[float, float]:
    """Uniform init bounds ``(b1, b2)`` for W1 (n_in x n_h) and W2 (n_h x n_out)."""
    n_out = 1 if cfg.readout == "regression" else cfg.n_classes
    if cfg.init == "published":
        # PyTorch's _calculate_fan_in_and_fan_out on an (in, out) matrix returns size(1)
        return 1 / math.sqrt(cfg.n_hidden), 1 / math.sqrt(n_out)
    if cfg.init == "starting_notebook":
        # both bounds computed from the membrane-only W (n_in x n_classes) of the notebook
        b = 1 / math.sqrt(cfg.n_classes)
        return b, b
    if cfg.init == "fan_in":
        return 1 / math.sqrt(cfg.n_inputs), 1 / math.sqrt(cfg.n_hidden)
    raise ValueError(f"unknown init {cfg.init!r}")


def dale_signs(
    n: int, dale: DaleConfig, population: str, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Sign (+1/-1) per presynaptic unit of ``population`` ("input" or "hidden")."""
    mode = dale.input_signs if population == "input" else dale.hidden_signs
    signs = torch.ones(n)
    if mode == "excitatory":
        return signs
    n_inh = int(n * dale.inhibitory_fraction)
    if dale.placement == "contiguous":
        signs[:n_inh] = -1
    else:
        signs[torch.randperm(n, generator=generator)[:n_inh]] = -1
    return signs


def dendrite_kernels(cfg: DendriteConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """Filter-and-fire PSP kernels, one per segment index, (segments, length), peak 1.

    Per segment ``tau_rise ~ U[tau_rise_min, tau_rise_max]`` and ``tau_decay ~ U[tau_decay_min,
    tau_decay_max]`` (steps); where ``tau_rise >= tau_decay / 1.5``, ``tau_decay = 1.5 *
    tau_rise``; the kernel ``exp(-t/tau_decay) - exp(-t/tau_rise)`` for ``t = 0 .. 4 *
    max(tau_decay)`` steps, divided by its peak (Alt-Filter-and-Fire_Neuron_Model_SNN.ipynb).
    """
    m = cfg.segments
    u = torch.rand(2, m, generator=generator, dtype=torch.float64)
    tau_r = cfg.tau_rise_min_steps + u[0] * (cfg.tau_rise_max_steps - cfg.tau_rise_min_steps)
    tau_d = cfg.tau_decay_min_steps + u[1] * (cfg.tau_decay_max_steps - cfg.tau_decay_min_steps)
    tau_d = torch.where(tau_r >= tau_d / 1.5, 1.5 * tau_r, tau_d)
    length = int(4 * float(tau_d.max())) + 1
    t = torch.arange(length, dtype=torch.float64)[None, :]
    k = torch.exp(-t / tau_d[:, None]) - torch.exp(-t / tau_r[:, None])
    return (k / k.max(dim=1, keepdim=True).values).float()


def _toeplitz(kernels: torch.Tensor, T: int) -> torch.Tensor:
    """(segments, T, T) lower-triangular matrices ``K[m, t, s] = kernel_m[t - s]``."""
    m, length = kernels.shape
    lag = torch.arange(T)[:, None] - torch.arange(T)[None, :]  # t - s
    valid = (lag >= 0) & (lag < length)
    k = kernels[:, lag.clamp(0, length - 1)]
    return k * valid.to(kernels.dtype)


def filter_segments(h: torch.Tensor, kernels: torch.Tensor, *, time_major: bool = False):
    """Causally filter each segment's current by its kernel and sum a neuron's segments.

    ``h``: (batch, T, n*M) -- or (T, batch, n*M) with ``time_major`` -- with column ``n*M + m``
    neuron n's segment m; returns (batch, T, n) (or (T, batch, n)): ``out[t, n] = sum_m sum_k
    kernel_m[k] * h[t - k, n*M + m]``. Differentiable in ``h``.
    """
    M = kernels.shape[0]
    T = h.shape[0] if time_major else h.shape[1]
    K = _toeplitz(kernels.to(h.dtype), T).to(h.device)
    if time_major:
        h4 = h.reshape(T, h.shape[1], -1, M)
        return torch.einsum("mts,sbnm->tbn", K, h4)
    h4 = h.reshape(h.shape[0], T, -1, M)
    return torch.einsum("mts,bsnm->btn", K, h4)


class SNN(nn.Module):
    """Input -> hidden LIF -> leaky-integrator (or LIF) output, no biases."""

    def __init__(
        self,
        cfg: ModelConfig,
        dt_s: float,
        *,
        generator: torch.Generator | None = None,
        backend: str = "auto",
    ):
        super().__init__()
        self.cfg = cfg
        self.dt_s = float(dt_s)
        self.backend = backend
        self.n_out = 1 if cfg.readout == "regression" else cfg.n_classes
        b1, b2 = init_bounds(cfg)
        self.membrane_only = cfg.architecture == "membrane_only"
        if self.membrane_only:
            # one (n_in x n_out) matrix; its published init bound is 1/sqrt(size(1)) = 1/sqrt(n_out)
            w1 = (torch.rand(cfg.n_inputs, self.n_out, generator=generator) * 2 - 1) * b2
            self.W1 = nn.Parameter(w1)
            self.W2 = None
            self.sign1 = self.sign2 = None
            self.kernels = None
            return
        # filter-and-fire: one W1 column per dendritic segment (n_hidden * segments columns)
        n_seg = cfg.dendrites.segments if cfg.dendrites.enabled else 1
        w1 = (torch.rand(cfg.n_inputs, cfg.n_hidden * n_seg, generator=generator) * 2 - 1) * b1
        w2 = (torch.rand(cfg.n_hidden, self.n_out, generator=generator) * 2 - 1) * b2
        self.W1 = nn.Parameter(w1)
        self.W2 = nn.Parameter(w2)
        if cfg.dale.enabled:
            self.register_buffer("sign1", dale_signs(cfg.n_inputs, cfg.dale, "input", generator))
            self.register_buffer("sign2", dale_signs(cfg.n_hidden, cfg.dale, "hidden", generator))
        else:
            self.sign1 = None
            self.sign2 = None
        if cfg.dendrites.enabled:
            self.register_buffer("kernels", dendrite_kernels(cfg.dendrites, generator))
        else:
            self.kernels = None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the filter-and-fire kernels' length depends on their random draw: take the stored one
        key = prefix + "kernels"
        if self.kernels is not None and key in state_dict:
            k = state_dict[key]
            if k.ndim != 2 or k.shape[0] != self.kernels.shape[0]:
                raise ValueError(
                    f"kernels: stored shape {tuple(k.shape)} does not fit "
                    f"{self.kernels.shape[0]} dendritic segments"
                )
            self.kernels = torch.empty_like(k, device=self.kernels.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ parameters
    @property
    def hidden_params(self) -> LIFParameters:
        c = self.cfg
        return LIFParameters(
            tau_s=c.tau_hidden_s,
            dt_s=self.dt_s,
            threshold=c.threshold,
            reset=c.reset,
            update_order=c.update_order,
            detach_reset=c.detach_reset,
            surrogate=c.surrogate,
            beta=c.surrogate_beta,
            adaptive_beta=c.adaptive_threshold_beta,
            adaptive_tau_s=c.adaptive_threshold_tau_s or c.tau_hidden_s,
        )

    @property
    def output_params(self) -> LIFParameters:
        return self.hidden_params._replace(tau_s=self.cfg.tau_output_s, adaptive_beta=0.0)

    def effective_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Weights as used in the forward pass (``|W| * sign`` under Dale's law)."""
        if self.sign1 is None:
            return self.W1, self.W2  # W2 is None for the membrane-only model
        return self.W1.abs() * self.sign1[:, None], self.W2.abs() * self.sign2[:, None]

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        x: torch.Tensor,
        *,
        dropout_generator: torch.Generator | None = None,
    ) -> SNNOutput:
        """``x``: input spikes (batch, T, n_inputs)."""
        engine.ensure_runtime()  # denormal flushing + malloc thresholds, once per process
        w1, w2 = self.effective_weights()
        if not self.membrane_only and self.backend != "reference":
            reason = self.fused_unsupported(w1)
            if reason is None:
                # bool/uint8 spikes as they are: the engine's input layer converts them itself
                return self._fused_forward(x, w1, w2, dropout_generator=dropout_generator)
            warnings.warn(
                f"spikeloc: the fused engine does not cover {reason}; running the reference loop",
                RuntimeWarning,
                stacklevel=2,
            )
        x = as_float_spikes(x, w1.dtype)
        if self.membrane_only:
            return self._membrane_only_forward(x, w1)
        return self._reference_forward(x, w1, w2, dropout_generator=dropout_generator)

    def fused_unsupported(self, like: torch.Tensor | None = None) -> str | None:
        """None when the fused engine covers this model's neurons for tensors like ``like``
        (default: the weights), else what it does not cover (:func:`spikeloc.engine.unsupported`)."""
        if self.membrane_only:
            return "the membrane-only architecture"
        like = self.W1 if like is None else like
        neurons = [self.hidden_params]
        if self.cfg.readout == "spike_count":
            neurons.append(self.output_params)
        for p in neurons:
            reason = engine.unsupported(p, device=like.device, dtype=like.dtype)
            if reason is not None:
                return reason
        return None

    def _fused_forward(self, x, w1, w2, *, dropout_generator=None) -> SNNOutput:
        cfg = self.cfg
        batch, T, _ = x.shape
        mask = self.dropout_mask((batch, T, cfg.n_hidden), w1, dropout_generator)
        out_spec = None
        if cfg.readout == "spike_count":
            out_spec = engine.LIFSpec.from_params(self.output_params)
        readout = engine.Readout(
            w2,
            cfg.readout,
            alpha=math.exp(-self.dt_s / cfg.tau_output_s),
            order=cfg.update_order,
            spec=out_spec,
        )
        hidden = engine.LIFSpec.from_params(self.hidden_params)
        currents: torch.Tensor | engine.SpikeInput = engine.SpikeInput(x, w1)
        if self.kernels is not None:
            # dendritic segments: the engine's input layer, then the filter, into the LIF
            seg = currents.currents()  # (T, batch, n_hidden * segments)
            currents = filter_segments(seg, self.kernels, time_major=True).transpose(0, 1)
        return engine.run_lif(currents, hidden, readout=readout, dropout_mask=mask)

    def dropout_mask(
        self, shape: tuple[int, ...], like: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor | None:
        """Inverted-dropout mask on hidden spikes (training only), drawn from ``generator``."""
        p = self.cfg.dropout
        if not (self.training and p > 0):
            return None
        keep = torch.full(shape, 1 - p, dtype=like.dtype)
        mask = torch.bernoulli(keep, generator=generator).to(like.device)
        return mask / (1 - p)

    def _membrane_only_forward(self, x, w1) -> SNNOutput:
        """Inputs straight into leaky integrators (3-Starting-Notebook ``membrane_only``)."""
        p = LIParameters(self.cfg.tau_output_s, self.dt_s)
        out = self._li_loop(x @ w1, p, self.cfg.update_order)
        readout = out.max(1).values if self.cfg.readout == "max_membrane" else out.mean(1)
        if self.cfg.readout == "regression":
            readout = readout[:, 0]
        empty = x.new_zeros(x.shape[0], x.shape[1], 0)
        return SNNOutput(readout, empty, out)

    def _reference_forward(self, x, w1, w2, *, dropout_generator=None) -> SNNOutput:
        p = self.hidden_params
        batch, T, _ = x.shape
        h = x @ w1  # (batch, T, n_hidden) -- or n_hidden * segments columns
        if self.kernels is not None:
            h = filter_segments(h, self.kernels)
        spikes = self._lif_loop(h, p)
        mask = self.dropout_mask(spikes.shape, spikes, dropout_generator)
        s_out = spikes * mask if mask is not None else spikes
        i_out = s_out @ w2
        if self.cfg.readout == "spike_count":
            out = self._lif_loop(i_out, self.output_params)
            readout = out.mean(1)
            return SNNOutput(readout, spikes, out)
        out = self._li_loop(i_out, LIParameters(self.cfg.tau_output_s, self.dt_s), p.update_order)
        if self.cfg.readout == "max_membrane":
            readout = out.max(1).values
        else:
            readout = out.mean(1)
        if self.cfg.readout == "regression":
            readout = readout[:, 0]
        return SNNOutput(readout, spikes, out)

    @staticmethod
    def _lif_loop(h: torch.Tensor, p: LIFParameters) -> torch.Tensor:
        batch, T, n = h.shape
        state = lif_initial_state((batch, n), p, device=h.device, dtype=h.dtype)
        steps = h.unbind(1)
        if p.update_order == "published":
            rec = [state.s]
            for t in range(T - 1):
                s, state = lif_step(steps[t], state, p)
                rec.append(s)
        else:
            rec = []
            for t in range(T):
                s, state = lif_step(steps[t], state, p)
                rec.append(s)
        return torch.stack(rec, dim=1)

    @staticmethod
    def _li_loop(i: torch.Tensor, p: LIParameters, order: str) -> torch.Tensor:
        batch, T, n = i.shape
        state = li_initial_state((batch, n), p, device=i.device, dtype=i.dtype)
        steps = i.unbind(1)
        if order == "published":
            rec = [state.v]
            for t in range(T - 1):
                v, state = li_step(steps[t], state, p)
                rec.append(v)
        else:
            rec = []
            for t in range(T):
                v, state = li_step(steps[t], state, p)
                rec.append(v)
        return torch.stack(rec, dim=1)


def build_model(cfg: RunConfig, *, generator: torch.Generator | None = None) -> SNN:
    """The network of a run config (weights drawn from ``generator``)."""
    return SNN(cfg.model, cfg.stimulus.dt_s, generator=generator, backend=cfg.backend)
