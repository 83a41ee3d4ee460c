r"""Training many networks of the same shapes together: one ensemble, one step for all members.

A sweep trains hundreds of small networks (200 -> 30 -> 12, batch 64, T = 100) whose single
steps leave two CPU cores, and a GPU even more, mostly idle: a few small GEMMs and a fixed cost
of Python, autograd and kernel launches. :func:`train_ensemble` trains ``E`` such runs as one
ensemble and pays that fixed cost once per step:

* **Members are the runs as they would be alone.** Member ``e`` is the :class:`SNN` of its own
  run config, initialised from its own seed (the same weights it gets alone), with its own
  dropout masks (its own generator), Dale signs, time constants, threshold, surrogate,
  regulariser, learning rate (its own optimiser parameter group) and data: its own training
  stream and shuffling, or one shared with the members whose data settings and seed are equal
  (they would see the same batches alone). Early stopping and best-weight snapshots are per
  member; a member that has stopped gets no gradient, so its weights and optimiser state no
  longer change. Each member's history, metrics and run directory are written exactly as if it
  had been trained alone (:func:`spikeloc.core.training.write_run`).
* **One step for all.** Members that share a batch read it through one input layer call
  (their input weights side by side: ``x @ [W1_1 | W1_2 | ...]``, the table look-ups shared);
  members whose hidden neurons share their option flags (update order, reset, surrogate
  kind, adaptation on/off; :meth:`spikeloc.engine.LIFSpec.flags`) and readout decay run through
  one call of the fused LIF kernel with their rows stacked (``E * batch`` rows), each row
  reading its member's values (time constant, threshold, surrogate slope, adaptation) from a
  per-member table (:func:`spikeloc.engine.cpu_kernels.params_table`; on CUDA, where the Triton
  kernels take one set of values, members with equal values share a call); rows are
  independent, so each member's spikes are the ones it computes alone. One log-softmax serves
  a neuron group's classification members; one backward pass and one optimiser step update
  all.
* **What cannot be an ensemble** (:func:`ensemble_key` is None) trains alone: the membrane-only
  architecture, filter-and-fire neurons, the max-membrane and spike-count readouts, the
  reference backend, and neurons the fused engine does not cover. Members must agree on every shape and on the schedule (input
  and hidden sizes, classes, readout, time steps, batch size, training-set size, epochs,
  optimiser type, early-stopping rule and validation size).

Equivalence: the input layer, the recurrence and the readout compute each member's numbers in
the same operations as alone (a shared table look-up sums the same partial sums per column;
stacked rows are independent), and Adam updates each member's parameters on their own, so a
member ends where it would alone to float rounding (``tests/unit/test_ensemble.py`` holds
weights after an epoch to a relative 1e-5 and full runs' metrics to the same value).
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm  # the text bar: tqdm.auto wants ipywidgets inside a kernel

from spikeloc import engine
from spikeloc.core.config import RunConfig
from spikeloc.core.models import SNN, SNNOutput, build_model
from spikeloc.core.stimuli import SpikeDataset, make_dataset
from spikeloc.core.training import (
    TrainResult,
    _early_stop,
    _evaluate_loss,
    _storage_dtype,
    loss_fn,
    make_datasets,
    resolve_device,
    seeded_generator,
    write_run,
)
from spikeloc.engine import cpu_kernels
from spikeloc.engine.layers import (
    LIFWithReadout,
    TimeWeightedSum,
    _padded_width,
    backend_for,
    li_mean_weights,
)
from spikeloc.engine.runtime import configure_runtime

__all__ = ["ensemble_key", "group_for_ensembles", "train_ensemble", "train_ensemble_runs"]

log = logging.getLogger("spikeloc.core.ensemble")

_READOUTS = ("mean_membrane", "regression")

#: Each member's classification loss by ``F.nll_loss`` of its own rows (recorded losses equal to
#: the run's alone bit for bit); False: one NLL for all members (see :func:`_group_losses`).
EXACT_LOSS = True


def ensemble_key(cfg: RunConfig) -> tuple | None:
    """Runs with equal keys can train as one ensemble; None: this run trains alone."""
    m, tr, st = cfg.model, cfg.training, cfg.stimulus
    if m.architecture != "hidden" or m.readout not in _READOUTS or cfg.backend == "reference":
        return None
    if tr.record_hidden_spikes:
        return None  # the recording hook lives in the single-run loop
    if m.dendrites.enabled:  # filter-and-fire: segment currents filtered before the LIF
        return None
    probe = build_model(cfg)
    if probe.fused_unsupported(torch.empty(0, device=resolve_device(cfg.device))) is not None:
        return None
    T = round(st.duration_s / st.dt_s)
    return (
        (m.n_inputs, m.n_hidden, m.n_classes, m.readout, T, st.anf_per_ear),
        (tr.batch_size, tr.n_train, tr.n_val, tr.epochs, tr.optimizer, tr.data),
        (
            tr.early_stopping,
            tr.patience,
            tr.min_epochs,
            tr.early_stopping_rule,
            tr.early_stopping_level,
            tr.restore_best,
        ),
        cfg.device,
    )


def group_for_ensembles(cfgs: Sequence[RunConfig]) -> list[list[int]]:
    """Indices of ``cfgs`` in groups that can train together (in order; singletons alone)."""
    groups: dict[object, list[int]] = {}
    order: list[object] = []
    for i, cfg in enumerate(cfgs):
        key = ensemble_key(cfg)
        if key is None:
            key = ("alone", i)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(i)
    return [groups[k] for k in order]


def _data_key(cfg: RunConfig) -> str:
    """Members with equal data keys see the same batches alone: they share them here."""
    tr = cfg.training
    blob = {
        "stimulus": cfg.stimulus.__dict__,
        "seed": cfg.seed,
        "sizes": (tr.n_train, tr.n_val, tr.n_test, tr.batch_size),
        "legacy": tr.legacy_numpy_seed,
        "data": tr.data,
        "clean_test": tr.clean_test,
    }
    return json.dumps(blob, sort_keys=True, default=str)


@dataclass
class _Member:
    cfg: RunConfig
    model: SNN
    g_drop: torch.Generator
    data_group: int
    history: list
    best_state: dict | None = None
    best_epoch: int | None = None
    best_val: float = math.inf
    stopped: bool = False


@dataclass
class _DataGroup:
    cfg: RunConfig  # its first member's config (the data settings all members share)
    members: list[int]
    datasets: dict
    g_shuffle: torch.Generator
    g_data: torch.Generator


def _spec_key(member: _Member, tables: bool) -> tuple:
    """Members with equal keys run through one kernel call: with per-member parameter tables
    (the CPU kernels) those whose neurons share their option flags, else those whose neurons
    are equal."""
    model = member.model
    spec = engine.LIFSpec.from_params(model.hidden_params)
    return (
        tuple(spec.flags().items()) if tables else spec,
        math.exp(-model.dt_s / model.cfg.tau_output_s),
        model.cfg.update_order,
        model.cfg.dropout > 0,
    )


class _EnsembleStep:
    """The forward pass of all members for one batch per data group."""

    def __init__(self, members: list[_Member], groups: list[_DataGroup], device: torch.device):
        self.members, self.groups = members, groups
        cfg = members[0].cfg
        self.H = cfg.model.n_hidden
        # the width the engine pads a layer to alone (only with a positive threshold: the
        # padded units get no current and must never spike)
        positive = all(m.model.cfg.threshold > 0 for m in members)
        self.Hp = _padded_width(self.H) if positive else self.H
        self.T = round(cfg.stimulus.duration_s / cfg.stimulus.dt_s)
        dtype = members[0].model.W1.dtype
        self.backend = backend_for(device, dtype)
        tables = self.backend == "numba"
        by_spec: dict[tuple, list[int]] = {}
        for i, m in enumerate(members):
            by_spec.setdefault(_spec_key(m, tables), []).append(i)
        # per group: its first member's spec (the flags; the values too without a table),
        # the per-member table of values (numba), the readout's alpha and order, dropout
        self.spec_groups = []
        for key, idx in by_spec.items():
            specs = [engine.LIFSpec.from_params(members[i].model.hidden_params) for i in idx]
            table = None
            if tables:
                table = cpu_kernels.params_table(specs, torch.empty(0, dtype=dtype).numpy().dtype)
            self.spec_groups.append(((specs[0], table, *key[1:]), idx))

    def __call__(self, batches: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``batches[g]``: the spikes of data group ``g``; returns, per neuron group,
        ``(member indices, readout values (n, B, n_out), hidden spikes (n, B, T, H))``."""
        H, Hp, T = self.H, self.Hp, self.T
        weights = [m.model.effective_weights() for m in self.members]
        blocks, order = [], []
        for g, group in enumerate(self.groups):
            # the members' input weights side by side (each zero-padded to the width the engine
            # pads a layer alone to): one look-up of the shared batch serves them all
            w = torch.cat([F.pad(weights[i][0], (0, Hp - H)) for i in group.members], dim=1)
            h = engine.SpikeInput(batches[g], w).currents(pad=False)  # (T, B, n * Hp)
            B = h.shape[1]
            # the input layer's storage is batch-major: (B, T, n, Hp) -> (n, B, T, Hp), a view
            blocks.append(
                h.transpose(0, 1).reshape(B, T, len(group.members), Hp).permute(2, 0, 1, 3)
            )
            order += group.members
        every = blocks[0] if len(blocks) == 1 else torch.cat(blocks, 0)  # (E, B, T, Hp)
        at = {i: k for k, i in enumerate(order)}
        groups_out: list = []
        for (spec, table, alpha_out, order_, dropout), idx in self.spec_groups:
            sel = [at[i] for i in idx]
            part = every if sel == list(range(len(order))) else every[torch.tensor(sel)]
            n = len(idx)
            # members' rows one after the other, batch-major (the layout the kernels read)
            h_k = part.reshape(n * B, T, Hp).transpose(0, 1)
            c = li_mean_weights(T, alpha_out, order_, dtype=h_k.dtype, device=h_k.device)
            if self.backend == "numba" and not dropout:
                spikes, r = LIFWithReadout.apply(h_k, c, spec, table)
                r = r.view(n, B, -1)[..., :H]
            else:
                spikes = engine.lif_sequence(h_k, spec, backend=self.backend, table=table)
                s = spikes.transpose(0, 1).reshape(n, B, T, Hp)[..., :H]
                if dropout:
                    masks = [
                        self.members[i].model.dropout_mask(
                            (B, T, H), weights[i][0], self.members[i].g_drop
                        )
                        for i in idx
                    ]
                    s = s * torch.stack(masks)
                # (T,) @ (n * B, T, H): each member's time-weighted sum, as alone
                r = TimeWeightedSum.apply(c, s.reshape(n * B, T, H)).view(n, B, H)
            values = torch.bmm(r, torch.stack([weights[i][1] for i in idx]))  # (n, B, n_out)
            hidden = spikes.transpose(0, 1).reshape(n, B, T, Hp)[..., :H]
            groups_out.append((idx, values, hidden))
        return groups_out


def _group_losses(members, idx, values, hidden, parts, sums) -> list[torch.Tensor]:
    """The losses (1-d tensors) of the training members ``idx`` of one neuron group, whose
    readout ``values`` (n, B, n_out) and ``hidden`` spikes (n, B, T, H) the step computed;
    adds each member's loss sum, correct answers and samples to ``sums``.

    Classification members without a regulariser share one log-softmax over all their rows
    (per row the operations alone); each member's NLL is then ``F.nll_loss`` of its rows, as
    alone (with :data:`EXACT_LOSS` False, one NLL over all rows and a mean per member: that
    mean sums in another order than ``F.nll_loss``'s, so the recorded loss may differ in the
    last bit, ~1e-8 relative; the gradient, ``-1/B`` at the label, is the same). The others take
    :func:`spikeloc.core.training.loss_fn` one by one."""
    out: list[torch.Tensor] = []
    fast = [
        j
        for j, i in enumerate(idx)
        if not members[i].stopped
        and members[i].cfg.model.readout != "regression"
        and not members[i].cfg.training.regulariser.enabled
    ]
    if fast:
        sel = values if len(fast) == len(idx) else values[torch.tensor(fast)]
        n, B, C = sel.shape
        ys = torch.stack([parts[members[idx[j]].data_group][1] for j in fast]).to(sel.device)
        logp = F.log_softmax(sel, dim=2)
        if EXACT_LOSS:
            # F.nll_loss's own mean per member: the loss alone, bit for bit
            loss = torch.stack([F.nll_loss(logp[k], ys[k]) for k in range(n)])
        else:
            nll = F.nll_loss(logp.reshape(n * B, C), ys.reshape(-1), reduction="none")
            loss = nll.view(n, B).mean(1)
        out.append(loss)
        correct = (sel.detach().argmax(2) == ys).sum(1).tolist()
        for j, lv, cj in zip(fast, loss.detach().tolist(), correct, strict=True):
            s = sums[idx[j]]
            s[0] += lv * B
            s[1] += int(cj)
            s[2] += B
    rest = set(range(len(idx))) - set(fast)
    for j in sorted(rest):
        i = idx[j]
        m = members[i]
        if m.stopped:
            continue
        _, y, ipd = parts[m.data_group]
        value = values[j]
        if m.cfg.model.readout == "regression":
            value = value[:, 0]
        loss = loss_fn(SNNOutput(value, hidden[j], None), y, ipd, m.cfg)
        out.append(loss.view(1))
        s = sums[i]
        s[0] += float(loss.detach()) * len(y)
        if m.cfg.model.readout != "regression":
            s[1] += int((value.detach().argmax(1).cpu() == y).sum())
        s[2] += len(y)
    return out


def _make_groups(members: list[_Member], device: torch.device) -> list[_DataGroup]:
    groups: dict[str, _DataGroup] = {}
    for i, m in enumerate(members):
        key = _data_key(m.cfg)
        if key not in groups:
            cfg = m.cfg
            g_data = seeded_generator(cfg.seed, "data")
            if cfg.training.data == "fresh":
                # as spikeloc.core.training.train: the epochs' sets have their own stream
                g_data = seeded_generator(cfg.seed, "fresh_data")
            groups[key] = _DataGroup(
                cfg=cfg,
                members=[],
                datasets=make_datasets(cfg, device),
                g_shuffle=seeded_generator(cfg.seed, "shuffle"),
                g_data=g_data,
            )
        groups[key].members.append(i)
        m.data_group = list(groups).index(key)
    return list(groups.values())


def train_ensemble(
    cfgs: Sequence[RunConfig], *, progress: bool = True
) -> tuple[list[TrainResult], list[dict[str, SpikeDataset | None]]]:
    """Train the runs ``cfgs`` (one :func:`ensemble_key`) as one ensemble; returns each
    member's :class:`TrainResult` and datasets, as :func:`spikeloc.core.training.train` would
    alone."""
    keys = {ensemble_key(c) for c in cfgs}
    if len(keys) != 1 or None in keys:
        raise ValueError("train_ensemble: the runs do not share one ensemble key")
    configure_runtime(cfgs[0].threads)
    device = resolve_device(cfgs[0].device)
    members = []
    for cfg in cfgs:
        model = build_model(cfg, generator=seeded_generator(cfg.seed, "model")).to(device)
        members.append(_Member(cfg, model, seeded_generator(cfg.seed, "dropout"), 0, []))
    groups = _make_groups(members, device)
    # one parameter group per learning rate: Adam updates each tensor on its own either way,
    # and a group's tensors go through one multi-tensor (foreach) update
    by_lr: dict[float, list[torch.nn.Parameter]] = {}
    for m in members:
        by_lr.setdefault(m.cfg.training.lr, []).extend([m.model.W1, m.model.W2])
    param_groups = [{"params": ps, "lr": lr} for lr, ps in by_lr.items()]
    tr = cfgs[0].training
    if tr.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(param_groups, foreach=True)
    else:
        opt = torch.optim.SGD(param_groups, lr=tr.lr, foreach=True)
    step = _EnsembleStep(members, groups, device)
    log.info(
        "ensemble of %d runs on %s: %d data group(s), %d neuron group(s)",
        len(members),
        device,
        len(groups),
        len(step.spec_groups),
    )
    t0 = time.perf_counter()
    bar = tqdm(
        range(tr.epochs),
        total=tr.epochs,
        desc=f"train ensemble of {len(members)}",
        unit="epoch",
        disable=not progress,
        file=sys.stderr,
        mininterval=0.5 if sys.stderr.isatty() else 10,
    )
    val_losses: list[list[float]] = [[] for _ in members]
    for epoch in bar:
        if all(m.stopped for m in members):
            break
        te = time.perf_counter()
        for g in groups:
            if tr.data == "fresh":
                g.datasets["train"] = make_dataset(
                    tr.n_train,
                    g.cfg.stimulus,
                    generator=g.g_data,
                    device=device,
                    dtype=_storage_dtype(device),
                )
        for m in members:
            m.model.train()
        sums = [[0.0, 0, 0] for _ in members]  # loss, correct, samples
        iters = [
            g.datasets["train"].batches(tr.batch_size, shuffle=True, generator=g.g_shuffle)
            for g in groups
        ]
        for parts in zip(*iters, strict=True):
            outs = step([x.to(device) for x, _, _ in parts])
            losses = []
            for idx, values, hidden in outs:
                losses += _group_losses(members, idx, values, hidden, parts, sums)
            opt.zero_grad(set_to_none=True)
            torch.cat(losses).sum().backward()
            for m in members:
                if m.stopped:  # no update at all (a zero gradient would still move Adam)
                    m.model.W1.grad = m.model.W2.grad = None
            opt.step()
        seconds = time.perf_counter() - te
        for i, m in enumerate(members):
            if m.stopped:
                continue
            loss_sum, correct, n = sums[i]
            classify = m.cfg.model.readout != "regression"
            row = {
                "epoch": epoch + 1,
                "train_loss": loss_sum / n,
                "train_accuracy": correct / n if classify else None,
                "val_loss": None,
                "val_accuracy": None,
                "seconds": seconds,
            }
            val_set = groups[m.data_group].datasets["val"]
            if val_set is not None:
                vl, va = _evaluate_loss(m.model, val_set, m.cfg, device)
                row["val_loss"], row["val_accuracy"] = vl, va
                val_losses[i].append(vl)
                if vl < m.best_val:
                    m.best_val, m.best_epoch = vl, epoch + 1
                    m.best_state = {
                        k: v.detach().cpu().clone() for k, v in m.model.state_dict().items()
                    }
                if tr.early_stopping and _early_stop(val_losses[i], epoch + 1, tr):
                    m.stopped = True
            row["stopped_early"] = m.stopped
            m.history.append(row)
        active = sum(not m.stopped for m in members)
        bar.set_postfix(active=active)
        if not progress or not sys.stderr.isatty():
            log.info(
                "epoch %d/%d: %d members training, %.2f s", epoch + 1, tr.epochs, active, seconds
            )
    bar.close()
    wall = time.perf_counter() - t0
    results = []
    for m in members:
        if tr.early_stopping and tr.restore_best and m.best_state is not None:
            m.model.load_state_dict(m.best_state)
        m.model.eval()
        results.append(
            TrainResult(
                model=m.model,
                history=m.history,
                best_epoch=m.best_epoch,
                epochs_run=len(m.history),
                stopped_early=m.stopped,
                wall_s=wall,
                device=str(device),
            )
        )
    return results, [groups[m.data_group].datasets for m in members]


def train_ensemble_runs(
    cfgs: Sequence[RunConfig],
    out_dirs: Sequence[str | Path],
    *,
    progress: bool = True,
    provenance: Sequence[dict | None] | None = None,
) -> list[dict]:
    """Train ``cfgs`` as one ensemble and write each member's run directory as
    :func:`spikeloc.core.training.train_run` would; returns each member's metrics."""
    started = time.time()
    tg = time.perf_counter()
    results, datasets = train_ensemble(cfgs, progress=progress)
    data_s = time.perf_counter() - tg - results[0].wall_s
    metrics = []
    for i, (cfg, result, data, out) in enumerate(
        zip(cfgs, results, datasets, out_dirs, strict=True)
    ):
        extra = dict((provenance or [None] * len(cfgs))[i] or {})
        extra["ensemble"] = {"size": len(cfgs), "member": i}
        metrics.append(
            write_run(
                cfg, result, data, out, started_unix=started, data_wall_s=data_s, provenance=extra
            )
        )
    return metrics
