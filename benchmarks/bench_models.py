"""Cost of the models of issue 3, measured side by side in one run (printed figures, not a test).

* train step (forward + compound loss + backward + AdamW step) of ``extended`` vs ``plain_unet``, same
  encoder, batch and size -- target ratio <= 1.05;
* inference of ``branches`` with detached branches vs ``plain_unet`` -- target ratio 1.00 +- 0.02;
* parameter counts of every model; peak memory of training every model beyond its parameters
  (activations, gradients, AdamW state, workspace) during a train step after a warm-up one, in a fresh
  process (CUDA: the allocator's peak; CPU: the resident high-water mark, see ``probe_memory``).

Timings alternate the two models round by round (ABBA order) and report medians and the median of the
per-round ratios, which cancels slow drifts of a shared machine; the load average is printed too.

    .venv/bin/python benchmarks/bench_models.py --size 192x128 --batch 4
    .venv/bin/python benchmarks/bench_models.py --threads 1 --clock cpu   # on a CPU shared with other jobs
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np
import torch

from clothparse_lib.data.cache import parse_size
from clothparse_lib.models import MODEL_NAMES, build_model, count_parameters, detach_branches
from clothparse_lib.models.encoders import RandomInitWarning
from clothparse_lib.profiles import ENCODERS
from clothparse_lib.training.losses import ClothParsingLoss

warnings.filterwarnings("ignore", category=RandomInitWarning)  # random weights are fine for timing


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="192x128", help="HEIGHTxWIDTH, multiples of 32 (paper: 288x192)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--encoder", default="resnet34", choices=ENCODERS)
    p.add_argument("--repeats", type=int, default=6, help="timed rounds per comparison")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--clock", default="wall", choices=("wall", "cpu"),
                   help="wall: elapsed time; cpu: this process's CPU time (CPU only; with --threads 1 it is "
                        "insensitive to other jobs sharing the cores)")
    p.add_argument("--no-memory", action="store_true", help="skip the per-model peak-memory probes")
    p.add_argument("--probe-memory", metavar="MODEL", help=argparse.SUPPRESS)  # internal: one CPU memory probe
    args = p.parse_args(argv)
    args.size = parse_size(args.size)
    args.device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                               "cpu" if args.device == "auto" else args.device)
    if args.clock == "cpu" and args.device.type != "cpu":
        p.error("--clock cpu measures CPU runs only")
    return args


def synthetic_batch(size, batch, device):
    """Paper-doll images and masks from the data layer's generator, normalised like the encoder expects."""
    from clothparse_lib.data.synthetic import make_sample
    samples = [make_sample(i, seed=0, height=size[0], width=size[1]) for i in range(batch)]
    images = torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2).float().div(255)
    masks = torch.from_numpy(np.stack([s.mask for s in samples])).long()
    return (images - 0.5).div(0.5).to(device), masks.to(device)


def train_step(model, x, y):
    model.train()
    loss = ClothParsingLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def step():
        opt.zero_grad(set_to_none=True)
        loss(model(x), y).backward()
        opt.step()
    return step


def inference(model, x):
    model.eval()

    def step():
        with torch.inference_mode():
            model(x)
    return step


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def compare(fns: dict, repeats: int, device, clock=time.perf_counter) -> dict[str, list[float]]:
    """Seconds per call of each function, rounds alternating the order (ABBA), after one warm-up call."""
    for fn in fns.values():
        fn()
    _sync(device)
    times = {k: [] for k in fns}
    for r in range(repeats):
        for k in (list(fns) if r % 2 == 0 else list(reversed(fns))):
            t0 = clock()
            fns[k]()
            _sync(device)
            times[k].append(clock() - t0)
    return times


def report(title, times, a, b, batch, target):
    ratios = [ta / tb for ta, tb in zip(times[a], times[b])]
    ratio = statistics.median(ratios)
    print(f"\n{title}")
    for k in (a, b):
        med = statistics.median(times[k])
        print(f"  {k:<28} {med * 1e3:9.1f} ms/step {med * 1e3 / batch:8.1f} ms/img   "
              f"(min {min(times[k]) * 1e3:.1f}, max {max(times[k]) * 1e3:.1f})")
    lo, hi = target
    verdict = "within target" if lo <= ratio <= hi else "OUTSIDE target"
    print(f"  ratio {a} / {b}: {ratio:.3f} (median of {len(ratios)} paired rounds; "
          f"range {min(ratios):.3f}-{max(ratios):.3f}; ratio of medians "
          f"{statistics.median(times[a]) / statistics.median(times[b]):.3f}) -> {verdict} [{lo:g}, {hi:g}]")


def probe_memory(args) -> dict:
    """Peak memory (MiB) of training one model beyond its parameters, measured in this fresh process.

    Baseline after building the model and the batch; one warm-up step allocates gradients and AdamW state;
    the peak of the second step (activations, gradients, optimizer state, workspace) minus the baseline.
    On the CPU the peak is the process's resident high-water mark (VmHWM, reset just before the step);
    ``memory_of`` starts the probe with ``MALLOC_MMAP_THRESHOLD_`` set so that freed tensors go back to the
    system and resident memory follows the live tensors.
    """
    model = build_model(args.probe_memory, encoder=args.encoder, img_size=args.size).to(args.device)
    x, y = synthetic_batch(args.size, args.batch, args.device)
    step = train_step(model, x, y)
    if args.device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return {"peak_mib": (torch.cuda.max_memory_allocated() - base) / 2**20}
    status = lambda key: int(open("/proc/self/status").read().split(key + ":")[1].split()[0]) * 1024  # noqa: E731
    base = status("VmRSS")
    step()
    with open("/proc/self/clear_refs", "w") as f:  # reset the high-water mark to the current RSS
        f.write("5")
    step()
    return {"peak_mib": (status("VmHWM") - base) / 2**20}


def memory_of(name, args) -> float | None:
    if args.device.type == "cuda":
        args.probe_memory = name
        result = probe_memory(args)
        torch.cuda.empty_cache()
        return result["peak_mib"]
    cmd = [sys.executable, __file__, "--probe-memory", name, "--size", f"{args.size[0]}x{args.size[1]}",
           "--batch", str(args.batch), "--encoder", args.encoder, "--device", "cpu"]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}  # large frees return memory to the system
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode:
        print(f"  (memory probe of {name} failed: {out.stderr.strip().splitlines()[-1:]})")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"]


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.probe_memory:
        print(json.dumps(probe_memory(args)))
        return
    h, w = args.size
    print(f"bench_models: encoder {args.encoder}, {h}x{w}, batch {args.batch}, device {args.device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.repeats} rounds, {args.clock} clock; "
          f"load average {os.getloadavg()[0]:.2f}")
    torch.manual_seed(0)
    x, y = synthetic_batch(args.size, args.batch, args.device)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    build = lambda name: build_model(name, encoder=args.encoder, img_size=args.size).to(args.device)  # noqa: E731

    plain, extended = build("plain_unet"), build("extended")
    fns = {"extended": train_step(extended, x, y), "plain_unet": train_step(plain, x, y)}
    times = compare(fns, args.repeats, args.device, clock)
    report("Train step (forward + loss + backward + AdamW)", times, "extended", "plain_unet", args.batch, (0, 1.05))
    del extended

    branches = detach_branches(build("branches"))
    fns = {"branches (detached)": inference(branches, x), "plain_unet": inference(plain, x)}
    times = compare(fns, args.repeats, args.device, clock)
    report("Inference (eval, inference_mode)", times, "branches (detached)", "plain_unet", args.batch, (0.98, 1.02))
    del branches, plain

    header = f"\n{'model':<20} {'params (M)':>11} {'encoder (M)':>12} {'params (MiB)':>13}"
    print(header + ("" if args.no_memory else f" {'train peak beyond params (MiB)':>31}"))
    for name in MODEL_NAMES:
        model = build_model(name, encoder=args.encoder, img_size=args.size)
        n = count_parameters(model)
        row = f"{name:<20} {n / 1e6:11.2f} {count_parameters(model.encoder) / 1e6:12.2f} {n * 4 / 2**20:13.0f}"
        del model
        if not args.no_memory:
            mib = memory_of(name, args)
            row += f" {mib:31.0f}" if mib is not None else f" {'n/a':>31}"
        print(row, flush=True)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
