"""Click-to-update latency of the click demo (notebook 08), per segmenter backend, on CPU.

For each backend: build it, start a ClickSession on a SynthRef image (the
image is encoded once), then let F_sim click ``--clicks`` times through the
widget's own event handler. Prints the one-off encode time, the segmenter
time per click (decoder only, all clicks so far + previous logits) and the
whole handler time per click (segmenter + overlay + PNG + plot + readout).
SAM2 uses hiera-t with random weights (timing only: the masks mean nothing).

    python bench/demo_latency.py [--clicks 10] [--image-size 112] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import warnings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clicks", type=int, default=10)
    ap.add_argument("--image-size", type=int, default=112)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--backends", default="classic,sam2")
    ap.add_argument("--json", metavar="FILE", default=None, help="also write the figures to FILE as JSON")
    args = ap.parse_args()

    import torch

    import seglib  # noqa: F401
    from seglib.clicker import next_click
    from seglib.interactive import ClickDemo, ClickSession, browser_click_event, pick_demo_input
    from seglib.segmenters import build_segmenter

    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    run_dir = tempfile.mkdtemp(prefix="demo_latency_")
    demo_input = pick_demo_input(run_dir, split="val", index=0, image_size=args.image_size)
    print(f"image {demo_input.image.shape[1]}x{demo_input.image.shape[0]} px, torch threads "
          f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    rows = []
    for name in args.backends.split(","):
        t0 = time.perf_counter()
        seg = build_segmenter(name, sam2_config="configs/sam2.1/sam2.1_hiera_t.yaml" if name == "sam2" else None)
        build_s = time.perf_counter() - t0
        session = ClickSession(demo_input.image, demo_input.query, seg, gt_mask=demo_input.gt_mask)
        demo = ClickDemo(session)
        handler_ms, seg_ms, cpu_ms = [], [], []
        for _ in range(args.clicks):
            click = next_click(demo_input.gt_mask, session.mask, clicked=session.clicks)
            if click is None:  # perfect mask: start over so every backend gets the same number of clicks
                session.reset()
                click = next_click(demo_input.gt_mask, session.mask)
            c0 = time.process_time()
            demo.handle_event(browser_click_event(demo, click.x, click.y, click.positive))
            cpu_ms.append(1000 * (time.process_time() - c0))
            handler_ms.append(1000 * demo.last_update_s)
            seg_ms.append(1000 * session.steps[-1].latency_s)
        print(f"{name:8s} build {build_s:6.2f} s | encode once {1000 * session.encode_s:7.1f} ms | "
              f"segmenter per click median {statistics.median(seg_ms):7.1f} ms (max {max(seg_ms):7.1f}) | "
              f"click→view median {statistics.median(handler_ms):7.1f} ms (max {max(handler_ms):7.1f}), "
              f"process CPU time {statistics.median(cpu_ms):7.1f} ms | encodes {getattr(seg, 'encode_count', '?')}")
        rows.append({"backend": name, "build_s": build_s, "encode_ms": 1000 * session.encode_s,
                     "segmenter_ms": statistics.median(seg_ms), "handler_ms": statistics.median(handler_ms),
                     "handler_max_ms": max(handler_ms), "cpu_ms": statistics.median(cpu_ms)})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"clicks": args.clicks, "image_size": args.image_size, "rows": rows}, f)


if __name__ == "__main__":
    main()
