"""What page faults cost a CPU forward, in the process a user runs: `senet profile` with glibc as it comes
and with glibc told to keep the memory it frees (GLIBC_KEEP), each model in a fresh process.

For each model and batch: the median (ms) and the page faults per run (MiB first touched, profile's
`page_faults_mib`) of the model and its baseline, both ways, and count's prediction from a device file
(the model predicts a process that keeps its memory). The faults' time at the device file's fresh-page
cost is printed beside them. With glibc's defaults how much a run faults depends on what the process
allocated before (senet_cli/profile/pages.py): these are fresh `senet profile` processes, as a user's.

Run: python benchmarks/page_faults.py --roofline DEVICE.json [--models torchvision:efficientnet_b0,se_resnet50]
     [--batches 1,8] [--iters 10] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from senet_cli.profile.pages import GLIBC_KEEP


def profiled(model: str, batch: int, args: argparse.Namespace, keep: bool) -> dict:
    """profile's JSON result for one batch, from a fresh process (GLIBC_KEEP set when `keep`)."""
    name, value = GLIBC_KEEP.split("=", 1)
    env = {key: val for key, val in os.environ.items() if key != name} | ({name: value} if keep else {})
    out = subprocess.run([sys.executable, "-m", "senet_cli", "profile", model, "--batch", str(batch), "--iters",
                          str(args.iters), "--threads", str(args.threads), "--flush-denormal", "--roofline",
                          args.roofline, "-f", "json"], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout)["results"][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--roofline", required=True, help="a senet calibrate device file (its fresh-page cost)")
    parser.add_argument("--models", default="torchvision:efficientnet_b0,resnet50,se_resnet50")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    with open(args.roofline, encoding="utf-8") as stream:
        cost = json.load(stream).get("fresh_page_us_per_mib", 0.0)
    print(f"# page faults in fresh `senet profile` processes, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"fresh-page cost {cost:.0f} us per MiB ({args.roofline})")
    print("| model | batch | glibc as it comes: median ms (faults MiB, ms) | baseline | kept: median ms (faults MiB) "
          "| baseline | predicted ms | baseline predicted |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")

    def cell(entry: dict | None, with_cost: bool = True) -> str:
        if not entry:
            return ""
        faults = entry.get("page_faults_mib") or 0.0
        extra = f", {faults * cost / 1000:.1f}" if with_cost else ""
        return f"{entry['latency_ms']['median']:.1f} ({faults:.1f}{extra})"

    for model in args.models.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            plain, kept = profiled(model, batch, args, keep=False), profiled(model, batch, args, keep=True)
            predicted = kept.get("predicted_ms")
            base_predicted = kept.get("baseline_predicted_ms")
            print(f"| {model} | {batch} | {cell(plain)} | {cell(plain['baseline'])} | {cell(kept, False)} | "
                  f"{cell(kept['baseline'], False)} | {'' if predicted is None else f'{predicted:.1f}'} | "
                  f"{'' if base_predicted is None else f'{base_predicted:.1f}'} |")


if __name__ == "__main__":
    main()
