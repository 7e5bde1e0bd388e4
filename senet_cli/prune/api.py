"""`prune`: fold or remove a checkpoint's attention modules, measure what it costs, write the result.

The SENet paper (Hu et al., Sec. 7.2) removed the last stage's SE blocks for about 4% fewer
parameters at a marginal loss; its authors also said SE "cannot be folded", as its gate depends on
the input. Both hold in part, and only data decides which blocks are which: `inspect` measures how
much each gate varies, and this module takes the chosen modules out and measures the price.

- mode "fold": each chosen module's gate is replaced by its mean per channel over the images (the
  streaming means `inspect` keeps) and multiplied into the weights around it (senet_cli/prune/fold.py);
  the module becomes a pass-through. Exact for a gate that is constant across inputs.
- mode "remove": the module becomes a pass-through; the weights stay as they are.

Both models run on the same images: top-1/top-5 accuracy when the images have labels, agreement of
the top-1 class with the original, the largest and mean absolute logit change; `count` gives the
parameters, MACs, elementwise ops and bytes saved (and the roofline bound saved, with `roofline`).
With `sweep`, each chosen block is also pruned alone and ranked by accuracy cost per parameter saved.
The pruned checkpoint records what was taken out (senet_cli/prune/record.py), so `count OUT` and
`inspect OUT` rebuild exactly the pruned architecture. Every model goes down one path, its Subject
(senet_cli/subject.py): zoo models and models outside the zoo alike.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from senet_cli.errors import ArgumentError, SenetError, UnknownChoiceError
from senet_cli.prune.record import CHECKPOINT_SUFFIXES, PRUNED_KEY
from senet_cli.prune.results import BlockPrune, Costs, Evaluation, PruneReport

if TYPE_CHECKING:
    import torch
    from torch import nn

    from senet_cli.checkpoint.loading import Checkpoint
    from senet_cli.count.results import CountReport
    from senet_cli.inspect.results import GateStats, InspectReport
    from senet_cli.subject import Subject

MODES = ("fold", "remove")
DONE = {"fold": "folded", "remove": "removed"}
CHECK_IMAGES = 8
"""Images of the first batch the fold check runs (fold.check): enough to see a wrong fold."""


@dataclasses.dataclass(frozen=True)
class Site:
    """An attention module of the model: its path, its block and stage, its gate submodules."""

    path: str
    block: str
    stage: int
    class_name: str  # the module's class ("SEModule", "SqueezeExcitation")
    role: str  # what it does to its input (senet_cli/outside/known.py ROLES: gate, residual, conv)
    gates: tuple[str, ...]  # gate submodule paths relative to the module
    labels: tuple[str, ...]  # the same gates as inspect names them (relative to the block: "se.gate")
    params: int


def prune(
    checkpoint: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    blocks: Sequence[str] | None = None,
    stages: Sequence[int] | None = None,
    candidates: bool = False,
    mode: str = "fold",
    sweep: bool = False,
    data: str = "samples",
    limit: int | None = None,
    batch: int = 16,
    input_size: int | Sequence[int] | None = None,
    device: str = "cpu",
    workers: int = 0,
    strict: bool = False,
    constant_tol: float | None = None,
    roofline: str | None = None,
    model: str | None = None,
    trust: bool = False,
    ema: bool = False,
    force: bool = False,
    on_batch: Callable[[int, int], None] | None = None,
    attention_classes: Sequence[str] = (),
    **options: Any,
) -> PruneReport:
    """Prune the attention of `checkpoint`'s chosen blocks and write `output` (see the module doc).

    Choose with exactly one of `blocks` (block paths, `layer4.2`), `stages` (stage numbers) or
    `candidates` (inspect's drop candidates, gates within `constant_tol`). `output` (.pth/.pt/.ckpt or
    .safetensors) is written atomically, never over an existing file without `force`; None writes
    nothing. `model`, `options` and `attention_classes` name the architecture as for `inspect` (a zoo
    model, or `timm:NAME`, `torchvision:NAME`, `file.py:callable`); the images (`data`, `limit`,
    `batch`, `input_size`, `workers`, `strict`) are inspect's too. `roofline`: a device as for
    `count` (a preset, "PEAK_TFLOPS,BANDWIDTH_GBS" or a `senet calibrate` DEVICE.json, which also
    gives the predicted time saved). Under torchrun the gate statistics and the evaluation are split
    over the processes and merged; rank 0 writes.
    """
    from senet_cli.inspect.api import CONSTANT_TOL
    from senet_cli.subject import check_attention_classes

    tol = CONSTANT_TOL if constant_tol is None else constant_tol
    if tol < 0:
        raise ArgumentError("constant tolerance ({constant_tol}) must be 0 or more, got {value}",
                            arguments=("constant_tol",), value=tol)
    check_attention_classes(model, attention_classes)
    if model is None and options:
        raise ArgumentError(
            "build options given without {model} ({names}): they describe an architecture, which then comes "
            "from the checkpoint", arguments={"model": ("model", "NAME")}, names=", ".join(options),
        )
    if roofline is not None:
        from senet_cli.count.roofline import parse_device

        parse_device(roofline)  # a bad device is refused before any work
    chosen = [bool(blocks), bool(stages), candidates]
    if sum(chosen) != 1:
        raise ArgumentError("choose the blocks with exactly one of {blocks}, {stages} or {candidates}",
                            arguments={"blocks": ("blocks", "NAME,..."), "stages": ("stages", "4"),
                                       "candidates": ("candidates", True)})
    if mode not in MODES:
        raise UnknownChoiceError("mode", mode, MODES)
    source = Path(checkpoint)
    target_file = None if output is None else Path(output)
    if target_file is not None:
        _check_output(source, target_file, force)

    from senet_cli.checkpoint.loading import load_checkpoint

    loaded = load_checkpoint(source, trust=trust, ema=ema)
    if PRUNED_KEY in loaded.metadata:
        done = ", ".join(f"{how} {len(paths)}" for how, paths in dict(loaded.metadata[PRUNED_KEY]).items()
                         if isinstance(paths, list) and paths)
        raise SenetError(f"{source} is already pruned ({done or 'recorded in its metadata'}); prune the original "
                         f"checkpoint instead")
    return _prune(loaded, target_file, blocks=blocks, stages=stages, candidates=candidates, mode=mode, sweep=sweep,
                  data=data, limit=limit, batch=batch, input_size=input_size, device=device, workers=workers,
                  strict=strict, tol=tol, roofline=roofline, model=model, force=force, on_batch=on_batch,
                  options=options, attention_classes=attention_classes)


def _check_output(source: Path, output: Path, force: bool) -> None:
    from senet_cli.checkpoint.writing import check_destination

    if output.suffix.lower() not in CHECKPOINT_SUFFIXES:
        raise ArgumentError("{output} takes a path ending in {suffixes}, got '{name}'", arguments=("output",),
                            suffixes=" ".join(CHECKPOINT_SUFFIXES), name=output.name)
    if output.exists() and source.exists() and output.resolve() == source.resolve():
        raise ArgumentError("{output} is the checkpoint being pruned; write the pruned one to another file",
                            arguments=("output",))
    check_destination(output, force)


def _prune(loaded: Checkpoint, output: Path | None, *, blocks: Sequence[str] | None, stages: Sequence[int] | None,
           candidates: bool, mode: str, sweep: bool, data: str, limit: int | None, batch: int,
           input_size: int | Sequence[int] | None, device: str, workers: int, strict: bool, tol: float,
           roofline: str | None, model: str | None, force: bool, on_batch: Callable[[int, int], None] | None,
           options: dict[str, Any], attention_classes: Sequence[str]) -> PruneReport:
    from senet_cli.inspect import distributed
    from senet_cli.inspect.api import _preprocess, inspect
    from senet_cli.inspect.images import open_images
    from senet_cli.outside.load import checkpoint_subject
    from senet_cli.subject import subject_for
    from senet_cli.zoo import resolve_device

    subject, resolved, state = checkpoint_subject(loaded, model, options, attention_classes)
    target = resolve_device(device)
    network = subject.with_weights(state, target)
    del state  # the network holds the weights now
    sites, block_order = _sites(subject, network)
    if not sites:
        raise SenetError(f"{subject.name} has no attention module to prune")
    selection, picked = _select(subject.name, sites, block_order, blocks, stages, candidates)
    _refuse_conv_slot(subject.name, picked)
    if mode == "fold" and picked:
        _refuse_unfoldable(picked)
    # One process group for inspect's pass and ours: inspect joins it without owning it. Creating a
    # second one after inspect destroyed its own can fail to connect (gloo reads the first one's
    # addresses from torchrun's store).
    group = distributed.join(target.type) if distributed.wanted() else None
    try:
        stats: InspectReport | None = None
        if mode == "fold" or candidates:
            stats = inspect(loaded, model=model, data=data, limit=limit, batch=batch, input_size=input_size,
                            device=str(target), workers=workers, constant_tol=tol, strict=strict,
                            attention_classes=attention_classes, **options)
            if candidates:
                names = {c.name for c in stats.candidates}  # inspect leaves out modules standing in for a conv
                picked = [site for site in sites if site.block in names and site.role != "conv"]
                if not picked:
                    raise SenetError(f"no block of {subject.name} has gates constant within {tol} across "
                                     f"images{' and classes' if stats.classes else ''} on {stats.data}: nothing to "
                                     f"prune as a candidate (raise constant_tol, or name blocks)")
                if mode == "fold":
                    _refuse_unfoldable(picked)
        preprocess = _preprocess(loaded, subject.config, input_size)
        shard = (group.rank, group.world_size) if group is not None else (0, 1)
        images = open_images(data, preprocess, limit=limit, batch=batch, workers=workers, shard=shard, strict=strict)
        head = images.head().to(target)[:CHECK_IMAGES]
        pruned, folded_into = _pruned_model(network, picked, mode, stats, head)
        record = tuple(sorted((site.path, DONE[mode]) for site in picked))
        pruned_subject = subject_for(dataclasses.replace(subject.config, pruned=record))
        _require_same_architecture(pruned_subject, pruned)
        pruned.senet_config = pruned_subject.config  # type: ignore[assignment]  # what save_checkpoint records, the pruned record with it
        variants = [pruned]
        if sweep:
            for site in picked:
                variants.append(_pruned_model(network, [site], mode, stats, head, checked=False)[0])
        evaluations = _evaluate(network, variants, images, target, group, on_batch)
    finally:
        if group is not None:
            distributed.leave(group)
    before_report = _count(subject, preprocess.size, roofline)
    after_report = _count(pruned_subject, preprocess.size, roofline)
    shares = _shares(before_report, picked)
    notes = [f"architecture of {loaded.path}: {subject.name} ({resolved.source})"]
    rows = []
    spreads: dict[str, list[GateStats]] = {}
    for gate_stats in stats.blocks if stats is not None else ():
        spreads.setdefault(gate_stats.name, []).append(gate_stats)
    for index, site in enumerate(picked):
        gates = [g for g in spreads.get(site.block, []) if g.gate in site.labels]
        alone = evaluations[2 + index] if sweep else None
        share = shares[site.path]
        rows.append(BlockPrune(
            block=site.block, stage=site.stage, module=site.path, mode=DONE[mode],
            folded_into=folded_into.get(site.path, ()),
            image_spread=max((g.image_spread for g in gates), default=None),
            class_spread=max((g.class_spread for g in gates), default=None) if stats and stats.classes else None,
            params=site.params, macs=share[0], elementwise_ops=share[1], bytes=share[2], kernels=share[3],
            predicted_ms=share[4], alone=alone,
            cost_per_kparam=None if alone is None else _cost(evaluations[0], alone, site.params / 1000.0),
            cost_per_ms=None if alone is None or not share[4] else _cost(evaluations[0], alone, share[4]),
        ))
    before_cost, after_cost = _costs(before_report), _costs(after_report)
    saved = before_cost.params - after_cost.params
    if saved != sum(site.params for site in picked):
        notes.append(f"count's parameters saved ({saved:,}) differ from the modules' own "
                     f"({sum(site.params for site in picked):,})")
    written = None
    if output is not None and (group is None or group.rank == 0):
        from senet_cli.checkpoint.writing import save_checkpoint

        recorded = {"input": list(preprocess.size), "mean": list(preprocess.mean), "std": list(preprocess.std)}
        save_checkpoint(pruned, output, preprocess=recorded, force=force)
        written = str(output)
    elif output is not None:
        written = str(output)
    if roofline is None:
        notes.append("time saved: pass roofline (a device preset, PEAK_TFLOPS,BANDWIDTH_GBS, or a `senet calibrate` "
                     "DEVICE.json for a predicted time) for count's bound")
    return PruneReport(
        model=subject.name, checkpoint=loaded.path, output=written, mode=mode, selection=selection,
        blocks=tuple(rows), data=images.description, classes=images.classes, input=preprocess.size,
        device=str(target), before=evaluations[0], after=evaluations[1],
        cost_before=before_cost, cost_after=after_cost,
        roofline_device=before_report.roofline.device if before_report.roofline is not None else None, sweep=sweep,
        notes=tuple(notes), world_size=1 if group is None else group.world_size,
    )


def _sites(subject: Subject, network: nn.Module) -> tuple[list[Site], list[str]]:
    """Every attention module of `network` (outermost, as its subject finds them) with its block,
    stage and gates; and every block path in module order."""
    found = subject.attention(network)
    blocks = subject.blocks(network)
    stage_of = dict(blocks)
    members = subject.block_members(network)
    gates, _ = subject.gates(network)
    sites: list[Site] = []
    for item in found:
        block = next((path for path, _ in blocks if _within(item.path, path)), None)
        if block is None:
            block = next((owner for member, owner in members.items() if _within(item.path, member)), None)
        stage = stage_of.get(block, 1) if block is not None else 1
        block = block if block is not None else item.path
        module = network.get_submodule(item.path)
        inside = {id(sub): name for name, sub in module.named_modules() if name}
        own = [(inside[id(gate.module)], gate.label) for gate in gates if id(gate.module) in inside]
        sites.append(Site(item.path, block, stage, item.class_name, item.role, tuple(name for name, _ in own),
                          tuple(label for _, label in own), sum(p.numel() for p in module.parameters())))
    return sites, [path for path, _ in blocks]


def _within(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".")


def _select(name: str, sites: list[Site], all_blocks: list[str], blocks: Sequence[str] | None,
            stages: Sequence[int] | None, candidates: bool) -> tuple[str, list[Site]]:
    """The chosen sites and how they were chosen; one line for a name or stage that picks nothing."""
    with_attention = list(dict.fromkeys(site.block for site in sites))
    if candidates:
        return "candidates", []
    if blocks:
        picked: list[Site] = []
        known = list(dict.fromkeys([*all_blocks, *with_attention]))
        for block in blocks:
            if block not in known:
                raise UnknownChoiceError("block", block, known, where=name)
            if block not in with_attention:
                raise SenetError(f"block {block} of {name} has no attention module (blocks with attention: "
                                 f"{_listed(with_attention)})")
            picked += [site for site in sites if site.block == block and site not in picked]
        return "blocks " + ",".join(blocks), picked
    wanted = sorted(set(stages or ()))
    have = sorted({site.stage for site in sites})
    for stage in wanted:
        if stage < 1:
            raise ArgumentError("{stages} takes stage numbers from 1, got {value}", arguments=("stages",),
                                value=stage)
    picked = [site for site in sites if site.stage in wanted]
    if not picked:
        raise SenetError(f"stage(s) {', '.join(map(str, wanted))} of {name} have no attention module (stages with "
                         f"attention: {', '.join(map(str, have))})")
    return "stages " + ",".join(map(str, wanted)), picked


def _listed(names: Sequence[str], most: int = 6) -> str:
    return ", ".join(names[:most]) + (", ..." if len(names) > most else "")


def _refuse_conv_slot(name: str, picked: Sequence[Site]) -> None:
    """One line for a module that stands in for a conv (SK): neither folded nor removed."""
    for site in picked:
        if site.role == "conv":
            raise SenetError(f"cannot prune {site.path} of {name}: {site.class_name} replaces the block's conv, so "
                             f"there is no gate to fold and nothing to remove (its branch selection is the "
                             f"convolution)")


def _refuse_unfoldable(picked: Sequence[Site]) -> None:
    """One line for a module whose gate is no per-channel scale (module doc of fold.py)."""
    from senet_cli.prune.fold import unfoldable

    for site in picked:
        if not site.gates:
            raise unfoldable(f"cannot fold {site.path}: {site.class_name} has no gate submodule (it adds a term "
                             f"computed from its input rather than scaling it by a gate), so there is no per-channel "
                             f"scale to fold")
        if len(site.gates) > 1:
            raise unfoldable(f"cannot fold {site.path}: {site.class_name} has {len(site.gates)} gates "
                             f"({', '.join(site.gates)}), some scaling positions rather than channels, which no "
                             f"per-channel mean stands in for"
                             + (" (cbam with spatial=false has a channel gate only)" if "CBAM" in site.class_name
                                else ""))


def _pruned_model(network: nn.Module, picked: Sequence[Site], mode: str, stats: InspectReport | None,
                  head: torch.Tensor, checked: bool = True) -> tuple[nn.Module, dict[str, tuple[str, ...]]]:
    """A copy of `network` with the picked modules folded or removed, and what each folded into."""
    import copy

    import torch
    from torch import nn

    from senet_cli.prune import fold

    pruned = copy.deepcopy(network)
    into: dict[str, tuple[str, ...]] = {}
    if mode == "remove":
        for site in picked:
            pruned.set_submodule(site.path, nn.Identity())
        return pruned, into
    assert stats is not None
    traces = fold.trace(network, [s.path for s in picked], {s.path: s.gates[0] for s in picked}, head)
    for site in picked:
        found = traces[site.path]
        gate = _gate_stats(stats, site)
        if not found.pure_gate or gate.kind != "channel":
            shape = "x".join(map(str, found.gate_shape)) or "none seen"
            raise fold.unfoldable(f"cannot fold {site.path}: its output is not its input times a per-channel gate "
                                  f"(gate {site.gates[0]}, shape {shape}, kind {gate.kind}), so no per-channel mean "
                                  f"stands in for it")
        scale = torch.tensor(gate.channel_means, dtype=torch.float32, device=head.device)
        if checked:
            fold.check(network, site.path, found, scale, head)
        into[site.path] = fold.fold_site(pruned, site.path, found, scale)
    return pruned, into


def _gate_stats(stats: InspectReport, site: Site) -> GateStats:
    for item in stats.blocks:
        if item.name == site.block and item.gate == site.labels[0]:
            return item
    raise SenetError(f"no gate statistics for {site.path} ({site.labels[0]}): inspect never saw it run")


def _require_same_architecture(pruned_subject: Subject, pruned: nn.Module) -> None:
    """The pruned model must be exactly what its record rebuilds (count OUT and inspect OUT build that)."""
    expected = {key: tuple(value.shape) for key, value in pruned_subject.build(meta=True).state_dict().items()}
    got = {key: tuple(value.shape) for key, value in pruned.state_dict().items()}
    if expected != got:  # pragma: no cover (a fold changes values, never keys or shapes)
        differ = sorted(set(expected) ^ set(got)) or [k for k in expected if expected[k] != got.get(k)]
        raise SenetError(f"the pruned {pruned_subject.name} is not what its record rebuilds: {', '.join(differ[:3])}")


def _evaluate(network: nn.Module, variants: Sequence[nn.Module], images: Any, target: Any, group: Any,
              on_batch: Callable[[int, int], None] | None) -> list[Evaluation]:
    """The original and each variant on the same images: [original, *variants] evaluations, merged over
    torchrun's processes (sums and maxima all-reduced)."""
    import torch

    models = [network, *variants]
    # per model: images, top1 hits, top5 hits, agreements, sum |logit change|, logits counted
    sums = torch.zeros(len(models), 6, dtype=torch.float64)
    largest = torch.zeros(len(models), dtype=torch.float64)
    labelled = bool(images.classes)
    classes = 0
    done = 0
    if on_batch is not None:
        on_batch(0, images.count)
    with torch.inference_mode():
        for batch, labels in images:
            x = batch.to(target)
            reference = network(x).float()
            first = reference.argmax(1)
            classes = reference.shape[1]
            for index, candidate in enumerate(models):
                logits = reference if index == 0 else candidate(x).float()
                change = (logits - reference).abs()
                row = sums[index]
                row[0] += logits.shape[0]
                if labelled and labels is not None:
                    y = labels.to(logits.device)
                    row[1] += float((logits.argmax(1) == y).sum())
                    if logits.shape[1] >= 5:
                        row[2] += float((logits.topk(5, 1).indices == y[:, None]).any(1).sum())
                row[3] += float((logits.argmax(1) == first).sum())
                row[4] += float(change.double().sum())
                row[5] += change.numel()
                largest[index] = max(float(largest[index]), float(change.max()))
            done += x.shape[0]
            if on_batch is not None:
                on_batch(done, images.count)
    if group is not None:
        import torch.distributed as dist

        device = target if group.backend == "nccl" else torch.device("cpu")
        merged, top = sums.to(device), largest.to(device)
        dist.all_reduce(merged, op=dist.ReduceOp.SUM)
        dist.all_reduce(top, op=dist.ReduceOp.MAX)
        sums, largest = merged.cpu(), top.cpu()
    results = []
    for index in range(len(models)):
        n, top1, top5, agree, total, values = sums[index].tolist()
        if n == 0:
            raise SenetError(f"no readable images in {images.description}")
        results.append(Evaluation(
            images=int(n), top1=top1 / n if labelled else None,
            top5=top5 / n if labelled and classes >= 5 else None, agreement=agree / n,
            max_logit_change=float(largest[index]), mean_logit_change=total / values,
        ))
    return results


def _count(subject: Subject, size: tuple[int, int], roofline: str | None) -> CountReport:
    """count's report for one image at the input size (with the roofline device, when given)."""
    from senet_cli.count import count

    return count(subject, input_size=size, roofline=roofline)


def _costs(report: CountReport) -> Costs:
    """A count report's totals: parameters, MACs, elementwise ops, bytes, kernels, and the roofline
    bound and predicted time when a device was given."""
    bound = report.roofline
    return Costs(report.params, report.macs, report.elementwise_ops, report.bytes, report.kernels,
                 bound.ms if bound is not None else None, bound.predicted_ms if bound is not None else None)


def _shares(report: CountReport, picked: Sequence[Site]) -> dict[str, tuple[int, int, int, int, float | None]]:
    """Each picked module's (MACs, elementwise ops, bytes, kernels, predicted ms) from count's row of its
    block: the block's attention share, split by parameters where one block holds several modules."""
    rows = {row.name: row for row in report.blocks}
    per_block: dict[str, list[Site]] = {}
    for site in picked:
        per_block.setdefault(site.block, []).append(site)
    shares: dict[str, tuple[int, int, int, int, float | None]] = {}
    for block, sites in per_block.items():
        row = rows.get(block)
        total = sum(site.params for site in sites)
        for site in sites:
            part = 1.0 if len(sites) == 1 else (site.params / total if total else 1.0 / len(sites))
            if row is None:
                shares[site.path] = (0, 0, 0, 0, None)
                continue
            predicted = row.attention_predicted_ms
            shares[site.path] = (round(row.attention_macs * part), round(row.attention_elementwise_ops * part),
                                 round(row.attention_bytes * part), round(row.attention_kernels * part),
                                 None if predicted is None else predicted * part)
    return shares


def _cost(original: Evaluation, alone: Evaluation, saved: float) -> float:
    """Accuracy points lost (disagreement without labels) per unit saved (1,000 parameters, or a ms)."""
    if original.top1 is not None and alone.top1 is not None:
        lost = 100.0 * (original.top1 - alone.top1)
    else:
        lost = 100.0 * (1.0 - alone.agreement)
    return lost / saved if saved else 0.0
