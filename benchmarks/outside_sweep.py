"""Sweep every timm and torchvision classification model through `senet count` (issue 21, "done means").

For each model of `timm.list_models()` and `torchvision.models.list_models(module=torchvision.models)`,
at its default input (timm's pretrained_cfg, else 224), on the meta device, in worker processes:
  * counted, or refused in one line (a SenetError: its first words are the reason), or crashed
    (any other exception, or a refusal of more than one line: a defect), or timed out;
  * its stages are numbered 1..N (rows in order);
  * the attention found: classes and how many, found by class or by structure (read from the
    report's JSON: a `found_by` key where the attention entries carry one, else "class").
Then the raw-file index (senet_cli/outside/index.py): its build time over all the models (in a temp
cache dir unless --cache-dir) and the recognition time of a raw state dict (index read + look-up,
after torch is imported), and a per-family table of the attention found (family: timm's model
module, torchvision's builder module).

Run: python benchmarks/outside_sweep.py [--jobs 2] [--match 'se*'] [--names A,B | --names @FILE] [--limit N]
     [--json out.json]
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import multiprocessing
import os
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any


def all_names() -> list[str]:
    import timm
    import torchvision

    return [f"timm:{n}" for n in timm.list_models()] + [
        f"torchvision:{n}" for n in torchvision.models.list_models(module=torchvision.models)
    ]


def chosen_names(spec: str, known: list[str]) -> list[str]:
    """The names `--names` gives (comma-separated, or @FILE with one a line), in `known`'s order; exits
    with one line naming any that neither library lists (a typo would otherwise sweep nothing)."""
    text = Path(spec[1:]).read_text() if spec.startswith("@") else spec.replace(",", "\n")
    wanted = {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}
    unknown = sorted(wanted - set(known))
    if unknown:
        raise SystemExit(f"outside_sweep: not models of timm or torchvision (or not matching --match): "
                         f"{', '.join(unknown[:5])}")
    return [name for name in known if name in wanted]


def family(name: str) -> str:
    """timm's model module (`resnet`, `byobnet`, `efficientnet`) or torchvision's builder module."""
    source, _, target = name.partition(":")
    try:
        if source == "timm":
            import timm

            module = timm.models.get_arch_name(target) and timm.models.model_entrypoint(target).__module__
        else:
            import torchvision

            module = torchvision.models.get_model_builder(target).__module__
    except Exception:  # noqa: BLE001 (an unknown name: its own family)
        return f"{source}.?"
    return f"{source}.{module.rpartition('.')[2]}"


def attention_found(report: dict[str, Any]) -> list[tuple[str, int, str]]:
    """(class, how many, found by) from count's JSON: `attention_found` (one entry per module with its
    `class` and `found_by`: models outside the zoo), else `attention_modules` as {class: count}, each
    counted as found by class."""
    per_module = report.get("attention_found")
    if isinstance(per_module, list) and per_module:
        tally = Counter((str(entry.get("class")), str(entry.get("found_by", "class")))
                        for entry in per_module if isinstance(entry, dict))
        return [(cls, count, how) for (cls, how), count in tally.items()]
    entries = report.get("attention_modules") or {}
    if isinstance(entries, dict):
        return [(cls, int(value), "class") for cls, value in entries.items() if isinstance(value, int)]
    return []


def _alarm(_signum: int, _frame: Any) -> None:
    raise TimeoutError("timed out")


def sweep_one(args: tuple[str, int]) -> dict[str, Any]:
    """One model: counted / refused / crashed / timeout, its stages and attention, and the time."""
    name, timeout = args
    import senet_cli
    from senet_cli.errors import SenetError

    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout)
    started = time.perf_counter()
    result: dict[str, Any] = {"name": name}
    try:
        report = senet_cli.count(name)
        data = report.to_dict()
        stages = [row.stage for row in report.blocks]
        result.update(status="counted", attention=attention_found(data), blocks=len(stages),
                      stages=max(stages) if stages else 0,
                      stages_ok=bool(stages) and stages == sorted(stages)
                      and set(stages) == set(range(1, max(stages) + 1)),
                      attention_params=report.attention_total("params"))
    except TimeoutError:
        result.update(status="timeout", reason=f"over {timeout} s")
    except SenetError as error:
        text = str(error)
        result.update(status="refused" if "\n" not in text else "crashed", reason=text.splitlines()[0][:200])
    except Exception as error:  # noqa: BLE001 (what the sweep looks for)
        first = str(error).splitlines()[0][:160] if str(error) else ""
        result.update(status="crashed", reason=f"{type(error).__name__}: {first}")
    finally:
        signal.alarm(0)
    result["seconds"] = round(time.perf_counter() - started, 3)
    result["family"] = family(name)
    return result


def reason_kind(reason: str) -> str:
    """A refusal's reason, shortened to its kind for the totals."""
    for marker in ("cannot run on input", "failed to build", "refused its keywords", "out of memory", "no attention"):
        if marker in reason:
            return marker
    return reason.split(":")[0][:60]


def index_times(names: list[str], full: bool, cache_dir: Path | None, samples: int) -> dict[str, Any]:
    """The index's build time over `names` (`full`: every model, the index senet itself uses), its size,
    and the recognition time of raw state dicts."""
    import torch

    from senet_cli.checkpoint.loading import load_checkpoint
    from senet_cli.outside import index as outside_index
    from senet_cli.outside.load import checkpoint_subject

    names = names + [n for n in ("torchvision:mobilenet_v3_small",) if n not in names]  # the raw file's model
    base = cache_dir or Path(tempfile.mkdtemp(prefix="senet-cache-"))
    os.environ["XDG_CACHE_HOME"] = str(base)  # senet's own look-ups read the index built here
    directory = outside_index.cache_dir()
    if not full:
        outside_index.all_names = lambda: list(names)  # type: ignore[assignment]
    started = time.perf_counter()
    index = outside_index.load_index(None, directory, progress=sys.stderr.isatty())
    build = time.perf_counter() - started
    size = index.path.stat().st_size if index.path.exists() else 0
    # recognition: read the cached index and look up each sample's meta shapes
    chosen = [s.name for s in index.signatures][:: max(1, len(index.signatures) // samples)][:samples]
    lookups, hits = [], 0
    for name in chosen:
        from senet_cli.subject import subject_for

        model = subject_for(name).build(meta=True)
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        started = time.perf_counter()
        read = outside_index.load_index(None, directory, progress=False)
        match = outside_index.recognise(shapes, read)
        lookups.append(time.perf_counter() - started)
        hits += match is not None and name in match.names
    # one raw file end to end (load + resolve + weights keyed), small enough to save for real
    with tempfile.TemporaryDirectory() as folder:
        import torchvision

        file = Path(folder) / "raw.pth"
        torch.save(torchvision.models.mobilenet_v3_small(num_classes=10).state_dict(), file)
        started = time.perf_counter()
        try:
            subject, _, _ = checkpoint_subject(load_checkpoint(file), None, {})
            end_to_end, recognised = time.perf_counter() - started, subject.name
        except Exception as error:  # noqa: BLE001
            end_to_end, recognised = time.perf_counter() - started, f"failed: {error}"
    return {"indexed": len(index.signatures), "failed_to_build": len(index.failed), "build_s": round(build, 1),
            "file_kb": round(size / 1024), "lookups": len(lookups), "hits": hits,
            "lookup_median_s": round(statistics.median(lookups), 4) if lookups else None,
            "lookup_max_s": round(max(lookups), 4) if lookups else None,
            "raw_file_end_to_end_s": round(end_to_end, 2), "raw_file_recognised_as": recognised}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--match", default="*", help="fnmatch pattern on the names (timm:*, *resnet*)")
    parser.add_argument("--names", help="only these models: NAME,NAME,... (timm:X, torchvision:Y) or @FILE, one a "
                        "line (a name neither library lists is refused before the sweep)")
    parser.add_argument("--limit", type=int, default=0, help="first N names only (0: all)")
    parser.add_argument("--timeout", type=int, default=120, help="seconds per model")
    parser.add_argument("--json", type=Path, help="write every model's result here")
    parser.add_argument("--no-index", action="store_true", help="skip the index build and recognition timing")
    parser.add_argument("--cache-dir", type=Path, help="index cache dir (default: a temp dir, built afresh)")
    options = parser.parse_args()

    names = [n for n in all_names() if fnmatch.fnmatch(n, options.match)]
    if options.names:
        names = chosen_names(options.names, names)
    if options.limit:
        names = names[: options.limit]
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    with multiprocessing.get_context("spawn").Pool(options.jobs, maxtasksperchild=25) as pool:
        for done, result in enumerate(pool.imap_unordered(sweep_one, [(n, options.timeout) for n in names]), 1):
            results.append(result)
            if done % 50 == 0:
                print(f"  {done}/{len(names)} models, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    sweep_s = time.perf_counter() - started
    full = options.match == "*" and not options.limit and not options.names
    index = None if options.no_index else index_times(names, full, options.cache_dir, samples=40)
    report(results, sweep_s, options.jobs, index)
    if options.json:
        options.json.write_text(json.dumps({"results": results, "index": index}, indent=1))


def report(results: list[dict[str, Any]], sweep_s: float, jobs: int, index: dict[str, Any] | None) -> None:
    status = Counter(r["status"] for r in results)
    counted = [r for r in results if r["status"] == "counted"]
    with_attention = [r for r in counted if r["attention"]]
    by = Counter()
    for r in with_attention:
        for _, count, found_by in r["attention"]:
            by[found_by] += count
    print(f"models tried: {len(results)} in {sweep_s:.0f} s ({jobs} processes)")
    print(f"counted: {status['counted']}  refused (one line): {status['refused']}  crashed: {status['crashed']}  "
          f"timed out: {status['timeout']}")
    print(f"stages numbered 1..N: {sum(r['stages_ok'] for r in counted)} of {len(counted)} counted")
    print(f"with attention: {len(with_attention)} models; attention modules found by class: {by['class']}, "
          f"by structure: {by['structure']}" + "".join(f", {k}: {v}" for k, v in by.items()
                                                      if k not in ("class", "structure")))
    times = sorted(r["seconds"] for r in counted)
    if times:
        print(f"count time per model: median {statistics.median(times):.2f} s, max {times[-1]:.1f} s")
    refused = Counter(reason_kind(r["reason"]) for r in results if r["status"] == "refused")
    for kind, n in refused.most_common():
        print(f"  refused, {kind}: {n}")
    for r in results:
        if r["status"] in ("crashed", "timeout"):
            print(f"  {r['status']}: {r['name']}: {r['reason']}")
    for r in counted:
        if not r["stages_ok"]:
            print(f"  stages not 1..N: {r['name']}")
    if index is not None:
        print("index: " + ", ".join(f"{k}={v}" for k, v in index.items()))
    families: dict[str, dict[str, Any]] = defaultdict(lambda: {"tried": 0, "attention": 0, "classes": Counter()})
    for r in results:
        entry = families[r["family"]]
        entry["tried"] += 1
        if r.get("attention"):
            entry["attention"] += 1
            for cls, count, found_by in r["attention"]:
                entry["classes"][f"{cls}" + ("" if found_by == "class" else f" ({found_by})")] += count
    print("\n| family | models | with attention | attention found (modules) |")
    print("| --- | ---: | ---: | --- |")
    for name, entry in sorted(families.items(), key=lambda item: (-item[1]["attention"], item[0])):
        if not entry["attention"]:
            continue
        classes = ", ".join(f"{cls} {n}" for cls, n in entry["classes"].most_common())
        print(f"| {name} | {entry['tried']} | {entry['attention']} | {classes} |")
    plain = sorted(name for name, entry in families.items() if not entry["attention"])
    print(f"\nfamilies without attention found ({len(plain)}): {', '.join(plain)}")


if __name__ == "__main__":
    main()
