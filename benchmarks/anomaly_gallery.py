"""Gallery of the training mix on real bottle images: normal, seen, extended and simulated.

The visual check of issue 3: textures must be visible (not dark blobs) and pasted defects must
sit on the bottle. Uses the same decoded-once setup as ``synthesis_speed.py`` (real bottle and
GIMP textures from ``../shared/data`` when present, the demo dataset otherwise). Writes
results/figures/anomaly_gallery_bottle.png.

    python benchmarks/anomaly_gallery.py [--size 256] [--per-kind 6] [--seed 0]
"""
from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")

from synthesis_speed import REPO, build_mix  # noqa: E402  (sibling script, run from benchmarks/)

from prn_core.viz import anomaly_gallery  # noqa: E402

OUT = REPO / "results" / "figures" / "anomaly_gallery_bottle.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--per-kind", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    setup = build_mix((args.size, args.size), seed=args.seed, max_normals=40)
    fig = anomaly_gallery(setup.mix, per_kind=args.per_kind, rows=("image", "overlay"), cell_size=2.0)
    fig.suptitle(f"Training mix: {setup.source['data']}, textures {setup.source['textures']}", fontsize=10)
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=80)
    print(f"wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
