"""Sweep `senet inspect` over the timm and torchvision models with attention (issue 21, "done means":
one entry per multiplying gate, of the right kind and channels).

For each model of the families with attention (README's family table: every model of those families,
so the 433 with attention found and their siblings without), in a worker process with a per-model
timeout: built with random weights (seed 0) on the CPU by timm or torchvision, its gates derived by
tests/gate_oracle.py (a real forward at 64x64, or at the model's default size where 64 is too small,
under a TorchFunctionMode: each product of a module's input by a tensor computed from it), then
`senet_cli.inspect` on its state dict with two synthetic images at the same size, and each entry compared
(gate path, kind, channels, positions, mean). Totals: models tried, with gates, entries expected and
matched, mismatches by cause, refusals (right: nothing to inspect where no gate multiplies; wrong),
errors, timeouts, and models skipped as too large (--max-params, counted on the meta device).

Run: python benchmarks/inspect_sweep.py [--jobs 1] [--match 'timm:se*'] [--names a,b] [--limit N]
     [--timeout 90] [--max-params 60e6] [--json out.json]
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import multiprocessing
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

ATTENTION_FAMILIES = (
    # README's family table (benchmarks/outside_sweep.py, 2026-12-05): the families where count found attention
    "timm.efficientnet", "timm.maxxvit", "timm.resnet", "timm.nfnet", "timm.regnet", "timm.byobnet",
    "timm.mobilenetv3", "timm.byoanet", "timm.fastvit", "timm.ghostnet", "timm.rexnet", "timm.senet",
    "timm.efficientvim", "timm.repghost", "timm.repvit", "timm.resnest", "timm.vovnet", "timm.efficientvit_msra",
    "timm.hardcorenas", "timm.cspnet", "timm.cspnext", "timm.gcvit", "timm.sknet", "timm.gemma4_vit", "timm.rdnet",
    "timm.shvit", "timm.tresnet", "timm.hgnet", "timm.lcnetv2", "timm.deepseek_vit", "torchvision.efficientnet",
    "torchvision.regnet", "torchvision.mobilenetv3", "torchvision.maxvit",
)


def _alarm(_signum: int, _frame: Any) -> None:
    raise TimeoutError("timed out")


def _params_on_meta(name: str) -> int:
    """The model's parameter count, built on the meta device; 0 (unknown) where its builder computes with
    tensors and cannot build there (torchvision's RegNets)."""
    import torch

    source, _, target = name.partition(":")
    try:
        with torch.device("meta"):
            if source == "timm":
                import timm

                model = timm.create_model(target)
            else:
                import torchvision

                model = torchvision.models.get_model(target)
    except (NotImplementedError, RuntimeError):
        return 0
    return sum(p.numel() for p in model.parameters())


def sweep_one(args: tuple[str, int, float]) -> dict[str, Any]:
    """One model: its expected gates, inspect's matches and the mismatches, or why it was not checked."""
    name, timeout, max_params = args
    from gate_oracle import compare

    result: dict[str, Any] = {"name": name}
    started = time.perf_counter()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout)
    try:
        params = _params_on_meta(name)
        result["params"] = params
        if params > max_params:
            result.update(status="too large")
        else:
            with tempfile.TemporaryDirectory(prefix="inspect-sweep-") as folder:
                expected, matched, problems = compare(name, folder)
            result.update(status="checked", expected=expected, matched=matched, problems=problems)
    except TimeoutError:
        result.update(status="timeout", reason=f"over {timeout} s")
    except Exception as error:  # noqa: BLE001 (what the sweep looks for: inspect or the oracle failed)
        first = str(error).splitlines()[0][:160] if str(error) else ""
        result.update(status="error", reason=f"{type(error).__name__}: {first}")
    finally:
        signal.alarm(0)
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


def round_robin(names: list[str], family: Any) -> list[str]:
    """The names of the attention families, one of each family in turn (each family in its own order):
    a sweep stopped early has still seen every family."""
    by_family: dict[str, list[str]] = {}
    for name in names:
        if family(name) in ATTENTION_FAMILIES:
            by_family.setdefault(family(name), []).append(name)
    queues = list(by_family.values())
    ordered: list[str] = []
    while any(queues):
        ordered += [queue.pop(0) for queue in queues if queue]
    return ordered


def cause(problem: str) -> str:
    """A mismatch's cause: its first words ("missing", "kind/channels", "refused: ...")."""
    head = problem.split(":")[0]
    if head == "refused":
        return "refused: " + problem.split(":")[2].strip()[:60] if problem.count(":") > 1 else head
    return head


def main() -> None:
    from outside_sweep import all_names, family

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--match", default="*", help="fnmatch pattern on the names (timm:*, *resnet*)")
    parser.add_argument("--names", default="", help="comma-separated names instead of the families' models")
    parser.add_argument("--limit", type=int, default=0, help="first N names only (0: all)")
    parser.add_argument("--timeout", type=int, default=90, help="seconds per model")
    parser.add_argument("--max-params", type=float, default=60e6, help="skip larger models (parameters)")
    parser.add_argument("--json", type=Path, help="write every model's result here (as the sweep goes)")
    parser.add_argument("--report", type=Path, help="only print the totals of a --json file (a stopped sweep's)")
    options = parser.parse_args()
    if options.report:
        results = json.loads(options.report.read_text())["results"]
        report(results, sum(r["seconds"] for r in results), 1)
        return

    if options.names:
        names = [n.strip() for n in options.names.split(",") if n.strip()]
    else:
        names = round_robin([n for n in all_names() if fnmatch.fnmatch(n, options.match)], family)
    if options.limit:
        names = names[: options.limit]
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    tasks = [(n, options.timeout, options.max_params) for n in names]
    with multiprocessing.get_context("spawn").Pool(options.jobs, maxtasksperchild=10) as pool:
        for done, result in enumerate(pool.imap_unordered(sweep_one, tasks), 1):
            results.append(result)
            if options.json:  # as it goes: a sweep stopped early still leaves its results
                options.json.write_text(json.dumps({"results": results}, indent=1))
            if done % 25 == 0:
                print(f"  {done}/{len(names)} models, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    report(results, time.perf_counter() - started, options.jobs)


def report(results: list[dict[str, Any]], seconds: float, jobs: int) -> None:
    status = Counter(r["status"] for r in results)
    checked = [r for r in results if r["status"] == "checked"]
    gated = [r for r in checked if r["expected"]]
    expected = sum(r["expected"] for r in checked)
    matched = sum(r["matched"] for r in checked)
    clean = [r for r in checked if not r["problems"]]
    print(f"models tried: {len(results)} in {seconds:.0f} s ({jobs} process{'es' if jobs > 1 else ''})")
    print(f"checked: {status['checked']}  too large (skipped): {status['too large']}  errors: {status['error']}  "
          f"timed out: {status['timeout']}")
    print(f"with multiplying gates: {len(gated)} models, {expected} gates expected, {matched} entries matched "
          f"(path, kind, channels, positions, mean)")
    silent = [r for r in checked if not r["expected"]]
    print(f"no multiplying gate: {len(silent)} models, refused in one line as they should: "
          f"{sum(not r['problems'] for r in silent)}")
    print(f"models with no mismatch: {len(clean)} of {len(checked)}")
    causes = Counter(cause(p) for r in checked for p in r["problems"])
    for kind, n in causes.most_common():
        models = sorted({r["name"] for r in checked if any(cause(p) == kind for p in r["problems"])})
        more = " ..." if len(models) > 6 else ""
        print(f"  mismatch, {kind}: {n} ({len(models)} models: {', '.join(models[:6])}{more})")
    for r in results:
        if r["status"] in ("error", "timeout"):
            print(f"  {r['status']}: {r['name']}: {r['reason']}")


if __name__ == "__main__":
    main()
