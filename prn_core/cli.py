"""``prn``: the command line. It parses flags into config dataclasses and calls the package.

Every sub-command shares the same flags for the run's config (``--profile``, ``--data-root``,
``--category``, ``--seed``, ``--image-size``, ``--epochs``, ``--device`` and the generic
``--set section.field=value``), so anything the book does in Python can be done here.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

__all__ = ["main", "build_parser", "config_from_args"]


def _add_config_flags(p: argparse.ArgumentParser, default_profile: str | None = None) -> None:
    g = p.add_argument_group("run configuration")
    g.add_argument("--profile", default=default_profile, help="ci | cpu | full (default: PRN_PROFILE, else full with a GPU, cpu without)")
    g.add_argument("--data-root", help="folder holding <category>/train and <category>/test (default: the embedded demo data)")
    g.add_argument("--category", help="category folder name under --data-root")
    g.add_argument("--seed", type=int, help="the one seed for split, synthesis, K-means and init")
    g.add_argument("--image-size", help="N or HxW, multiples of 32")
    g.add_argument("--epochs", type=int)
    g.add_argument("--backbone", help="registered backbone name (see `prn backbones`)")
    g.add_argument("--textures", help="texture folder for simulated anomalies, or 'dtd'")
    g.add_argument("--format", help="dataset layout: mvtec (default), btad, kolektorsdd2, dagm, folder")
    g.add_argument("--keep-aspect", action="store_true", help="pad to --image-size instead of squashing")
    g.add_argument("--device", help="auto | cpu | cuda")
    g.add_argument(
        "--protocol",
        choices=["honest-final", "honest-val", "leaky"],
        help="honest-final (default): keep the last epoch; honest-val: best epoch on validation; "
        "leaky: unofficial, seen anomalies stay in test, comparison only",
    )
    g.add_argument("--leaky", action="store_true", help="same as --protocol leaky")
    g.add_argument(
        "--monitor-test",
        action="store_true",
        help="diagnostic: log test metrics every epoch (never used to select the model)",
    )
    g.add_argument("--force", action="store_true", help="run the full profile without a GPU")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config field, e.g. --set train.lr=3e-4 (repeatable)")


def config_from_args(args: argparse.Namespace, need_device: bool = True):
    """Profile preset, then the named flags, then ``--set`` overrides, in that order.

    ``need_device=False`` skips the GPU check for commands that never train (``data check``).
    """
    from .config import default_profile_name, get_profile, override

    cfg = get_profile(args.profile or default_profile_name())
    changes: dict[str, Any] = {}
    for flag, key in (("data_root", "data.root"), ("category", "data.category"), ("seed", "seed"),
                      ("image_size", "data.image_size"), ("epochs", "train.epochs"),
                      ("backbone", "model.backbone"), ("textures", "data.textures"), ("device", "train.device"),
                      ("format", "data.format"), ("protocol", "train.protocol")):
        value = getattr(args, flag, None)
        if value is not None:
            changes[key] = value
    if getattr(args, "leaky", False):
        if changes.get("train.protocol", "leaky") != "leaky":
            raise ValueError(
                f"--leaky contradicts --protocol {changes['train.protocol']}; pass one of them"
            )
        changes["train.protocol"] = "leaky"
    if getattr(args, "monitor_test", False):
        changes["train.monitor_test"] = True
    if getattr(args, "keep_aspect", False):
        changes["data.keep_aspect"] = True
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        changes[key.strip()] = value.strip()
    cfg = override(cfg, **changes)
    if cfg.profile == "full" and not getattr(args, "force", False) and need_device:
        import torch

        if not torch.cuda.is_available():
            raise ValueError("the 'full' profile needs a CUDA GPU; use --profile cpu, or --force to run it anyway")
    if getattr(args, "force", False) and cfg.train.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            cfg = override(cfg, **{"train.device": "cpu"})
    return cfg


def _cmd_demo(args: argparse.Namespace) -> int:
    from .config import override
    from .data import DEMO_CATEGORIES
    from .report import write_report
    from .train import run

    if args.category is None:
        args.category = DEMO_CATEGORIES[0]
    if args.profile is None:
        args.profile = "ci"
    cfg = config_from_args(args)
    if cfg.data.root is not None:
        cfg = override(cfg, **{"data.root": None})
    out = Path(args.out)
    trained, ev, result = run(cfg, out, command=_command_line(args))
    report = write_report(trained, ev, result, out)
    _print_metrics(result)
    print(f"[prn demo] trained {cfg.profile} profile on demo category '{cfg.data.category}' "
          f"({len(trained.data.split.train)} normal + {len(trained.data.split.seen)} seen anomalies) "
          f"in {result['train_seconds']:.0f} s; report: {report}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from . import distributed
    from .report import write_report
    from .train import run

    cfg = config_from_args(args)
    out = Path(args.out or f"runs/{cfg.profile}/{cfg.data.category}/seed{cfg.seed}")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; pass a folder for the run")
    try:
        trained, ev, result = run(cfg, out, resume=args.resume, command=_command_line(args))
    except KeyboardInterrupt:
        raise _Interrupted(f"interrupted; every finished epoch is saved in {out}. Rerun the same "
                           f"command with --resume to continue from the last one") from None
    if distributed.world_size() > 1:  # each rank holds only its block of the test maps
        if distributed.is_main():
            _print_metrics(result)
            print(f"[prn train] {distributed.world_size()} ranks: model, checkpoints and "
                  f"result.json in {out}; for figures run "
                  f"`prn evaluate --checkpoint {out / 'model.pt'}` in one process")
        return 0
    report = write_report(trained, ev, result, out)
    _print_metrics(result)
    print(f"[prn train] model, checkpoints, result.json and {report.name} in {out}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .atomic import write_json_atomic
    from .evaluation import evaluate_checkpoint
    from .results import defect_type_lines

    if args.out and Path(args.out).is_dir():
        raise ValueError(f"--out {args.out} is a folder; pass the name of a JSON file to write")
    ev, _ = evaluate_checkpoint(args.checkpoint, args.data_root, args.category)
    by_type = ev.by_defect_type()
    print(json.dumps(ev.metrics, indent=2))
    print("\n".join(defect_type_lines(by_type)))
    if args.out:
        write_json_atomic(args.out, {"checkpoint": str(args.checkpoint), "metrics": ev.metrics,
                                     "metrics_by_defect_type": by_type})
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from .predict import predict_files

    written = predict_files(args.images, args.checkpoint, args.out, batch_size=args.batch_size,
                            threshold=args.threshold, pixel_threshold=args.pixel_threshold,
                            engine=args.engine, overwrite=args.overwrite)
    rows = json.loads(Path(written).read_text())["predictions"]
    flagged = sum(row["anomalous"] for row in rows)
    print(f"[prn predict] {len(rows)} images, {flagged} anomalous; heatmaps, masks, "
          f"{written.name} and scores.csv in {written.parent}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .deploy import export

    target = export(args.checkpoint, args.format, args.out, precision=args.precision)
    print(f"[prn export] {target.name} and prn_export.json (input size, padding, thresholds) "
          f"in {target.parent}")
    return 0


def _cmd_prototypes(args: argparse.Namespace) -> int:
    from .models import build_backbone
    from .prepare import fit_or_load_prototypes, prepare_data, resolve_device

    cfg = config_from_args(args)
    data = prepare_data(cfg)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    bank = fit_or_load_prototypes(cfg, data, build_backbone(cfg.model.backbone, cfg.model.weights), out,
                                  resolve_device(cfg.train.device))
    shapes = ", ".join(str(tuple(p.shape)) for p in bank.prototypes)
    print(f"[prn prototypes] {len(data.normals)} normal images -> prototypes {shapes} saved to {out}")
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from .data import CATEGORIES, download_mvtec, get_format
    from .prepare import check_run

    if args.action == "download":
        cats = CATEGORIES if args.categories == ["all"] else tuple(args.categories)
        root = download_mvtec(Path(args.cache_dir) if args.cache_dir else None, cats)
        print(f"[prn data] MVTec AD categories {', '.join(cats)} ready in {root}")
        return 0
    if not args.data_root:
        raise ValueError("prn data check needs --data-root (the folder that holds the categories)")
    root = Path(args.data_root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"--data-root {root} is not a folder")
    args.format = args.format or "mvtec"
    categories = (
        get_format(args.format).categories(root) if args.categories == ["all"] else args.categories
    )
    if not categories:
        raise ValueError(
            f"no category found under {root} in the {args.format!r} layout: expected "
            f"<category>/train/good and <category>/test folders; check --data-root and --format"
        )
    for category in categories:  # the same checks as `prn train`, before any image is decoded
        args.category = category
        cfg = config_from_args(args, need_device=False)
        split = check_run(cfg)
        bad = sum(s.label for s in split.test)
        print(
            f"[prn data] {category}: {len(split.train)} train + {len(split.val)} val normal, "
            f"{len(split.seen)} seen anomalies, test {len(split.test) - bad} good + {bad} "
            f"defective: "
            f"OK for profile {cfg.profile} ({cfg.train.protocol})"
        )
    return 0


def _launch_options(args: argparse.Namespace):
    from .launch import LaunchOptions

    for flag in ("cpus_per_run", "max_retries"):
        if getattr(args, flag) < (1 if flag == "cpus_per_run" else 0):
            raise ValueError(f"--{flag.replace('_', '-')} must be >= "
                             f"{1 if flag == 'cpus_per_run' else 0}, got {getattr(args, flag)}")
    if args.launcher != "ray" and args.address:
        raise ValueError("--address names a Ray cluster; add --launcher ray")
    return LaunchOptions(address=args.address, cpus_per_run=args.cpus_per_run,
                         max_retries=args.max_retries)


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from .data import CATEGORIES
    from .launch import RunsFailedError
    from .reproduce import reproduce

    args.category = None
    cfg = config_from_args(args)
    cats = list(CATEGORIES) if args.categories == ["all"] else args.categories
    try:
        table = reproduce(cfg, cats, args.seeds, Path(args.out), command=_command_line(args),
                          launcher=args.launcher, options=_launch_options(args))
    except RunsFailedError as err:
        print(f"prn reproduce: {err}", file=sys.stderr)
        return 1
    print(table)
    return 0


def _cmd_ablate(args: argparse.Namespace) -> int:
    from .ablations import ABLATIONS, run_ablations
    from .launch import RunsFailedError

    cfg = config_from_args(args)
    names = list(ABLATIONS) if args.variants == ["all"] else args.variants
    try:
        results = run_ablations(cfg, names, Path(args.out), command=_command_line(args),
                                seeds=args.seeds or None,
                                launcher=args.launcher, options=_launch_options(args))
    except RunsFailedError as err:
        print(f"prn ablate: {err}", file=sys.stderr)
        return 1
    for row in results:
        print(f"{row['variant']:>18} seed {row['seed']}  "
              + "  ".join(f"{k}={v:.3f}" for k, v in row["metrics"].items()))
    return 0


def _cmd_backbones(args: argparse.Namespace) -> int:
    from .models import list_backbones

    print("\n".join(list_backbones()))
    return 0


def _print_metrics(result: dict[str, Any]) -> None:
    m = result["metrics"]
    print("  ".join(f"{k}={v:.4f}" for k, v in m.items() if isinstance(v, float)))


def _command_line(args: argparse.Namespace) -> str:
    """The command as typed, also when ``main`` is called from Python with its own argv."""
    return "prn " + " ".join(shlex.quote(a) for a in args.argv)


_LAUNCH_HELP = """\
launchers:
  local  one run after another in this process (default; no extra dependency)
  ray    every run is a Ray task asking for one GPU, or --cpus-per-run CPUs on a cluster
         without GPUs. It joins --address (or RAY_ADDRESS), else starts a Ray on this machine.
         Needs: pip install 'prn-core[cluster]'

shared storage:
  --out and the data root must be on storage that this machine and every Ray node see at the
  same path (NFS, a cluster file system). A run is finished only when this machine can read
  the result.json its worker reports; otherwise it is listed as failed.

retries and resume:
  a run whose worker dies (killed, out of memory, node lost) is retried up to --max-retries
  times and resumes from its last checkpoint (written after every epoch), not from scratch.
  A Python error (bad config, missing data) is not retried. A run folder is reused only when
  its result.json holds the same config fingerprint; a folder made with another config is an
  error. The summary is written only when every run finished; otherwise the failed runs are
  listed with their errors and the command exits with status 1. Run it again to retry them.
"""


def _add_launch_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("launcher (see the notes below)")
    g.add_argument("--launcher", choices=["local", "ray"], default="local",
                   help="local: sequential in this process; ray: one Ray task per run")
    g.add_argument("--address", help="Ray cluster address, e.g. auto or 10.0.0.1:6379 "
                                     "(default: RAY_ADDRESS, else a local Ray)")
    g.add_argument("--cpus-per-run", type=int, default=1,
                   help="CPUs each Ray task asks for when the cluster has no GPU (default 1)")
    g.add_argument("--max-retries", type=int, default=2,
                   help="times Ray retries a run whose worker died; it resumes from its "
                        "checkpoint (default 2)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prn", description="Prototypical Residual Networks: train, evaluate, reproduce.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="end to end on the embedded demo data (minutes on CPU), with a report")
    _add_config_flags(p)
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("data", help="download MVTec AD, or check a dataset against a run's config")
    p.add_argument("action", choices=["download", "check"])
    p.add_argument("--categories", nargs="+", default=["all"], help="category names or 'all'")
    p.add_argument("--cache-dir", help="download folder (default: the package cache, where the chapters look)")
    _add_config_flags(p)
    p.set_defaults(func=_cmd_data)

    p = sub.add_parser("prototypes", help="fit multi-scale prototypes for a category and save them")
    _add_config_flags(p)
    p.add_argument("--out", required=True, help="prototype file to write (.pt)")
    p.set_defaults(func=_cmd_prototypes)

    p = sub.add_parser("train", help="train one category and evaluate it on the leak-free test split")
    _add_config_flags(p)
    p.add_argument("--out", help="run folder (default: runs/<profile>/<category>/seed<seed>)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out "
                   "(also with another number of torchrun ranks)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a trained model on its category's test split")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data-root")
    p.add_argument("--category")
    p.add_argument("--out", help="write the metrics as JSON here")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("predict", help="decisions, defect masks, heatmaps and scores for images")
    p.add_argument("images", nargs="+",
                   help="image files, folders (searched recursively) or quoted glob patterns")
    p.add_argument("--checkpoint", required=True,
                   help="model.pt (engine torch), or the prn export folder (other engines)")
    p.add_argument("--out", required=True)
    p.add_argument("--threshold", type=float,
                   help="image threshold in [0, 1] (default: calibrated on validation)")
    p.add_argument("--pixel-threshold", type=float,
                   help="defect-mask threshold in [0, 1] (default: calibrated on validation)")
    p.add_argument("--engine", choices=["torch", "pt2", "onnx", "openvino"], default="torch")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--overwrite", action="store_true",
                   help="write into an --out folder that already holds predictions")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("export", help="export a model file for deployment (pt2, ONNX, OpenVINO)")
    p.add_argument("checkpoint", help="model.pt written by prn train")
    p.add_argument("--format", choices=["pt2", "onnx", "openvino"], required=True)
    p.add_argument("--precision", choices=["fp32", "fp16", "int8"], default="fp32",
                   help="fp16/int8: openvino only (int8 needs calibration images: Python API)")
    p.add_argument("--out", required=True, help="folder to write the exported model into")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("reproduce",
                       help="train and evaluate many categories and seeds; table against the paper",
                       epilog=_LAUNCH_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_config_flags(p)
    _add_launch_flags(p)
    p.add_argument("--categories", nargs="+", default=["all"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--out", default="results/reproduce")
    p.set_defaults(func=_cmd_reproduce)

    p = sub.add_parser("ablate", help="train named variants of one config (see prn_core.ablations)",
                       epilog=_LAUNCH_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_config_flags(p)
    _add_launch_flags(p)
    p.add_argument("--variants", nargs="+", default=["all"])
    p.add_argument("--seeds", nargs="+", type=int, default=None,
                   help="train every variant with each seed (default: --seed)")
    p.add_argument("--out", default="results/ablations")
    p.set_defaults(func=_cmd_ablate)

    p = sub.add_parser("backbones", help="list the registered backbones")
    p.set_defaults(func=_cmd_backbones)
    return parser


class _Interrupted(Exception):
    """Ctrl-C, with a message that says how to continue."""


def _one_line(err: BaseException) -> str:
    """The message of ``err`` on one line, with the hint a user needs for common OS errors."""
    if isinstance(err, KeyboardInterrupt):
        return "interrupted"
    if isinstance(err, OSError) and not isinstance(err, FileNotFoundError) and err.strerror:
        where = f" ({err.filename})" if err.filename else ""
        hint = {errno.ENOSPC: "; free disk space, then rerun (prn train: add --resume)",
                errno.EACCES: "; choose a folder you can write to, or fix its permissions",
                errno.EROFS: "; choose a writable folder"}.get(err.errno or 0, "")
        text = f"{err.strerror}{where}{hint}"
    else:
        text = str(err) or type(err).__name__
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: every error prints one line and exits with status 2.

    User errors (bad flags, bad data, bad checkpoints, a full disk, Ctrl-C) name the problem;
    anything else is reported as unexpected, with ``PRN_DEBUG=1`` to see the traceback.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    if not hasattr(args, "set"):
        args.set = []
    prefix = f"prn {args.command}: error:"
    try:
        return args.func(args)
    except (ValueError, OSError, RuntimeError, _Interrupted, KeyboardInterrupt) as err:
        if os.environ.get("PRN_DEBUG"):
            raise
        print(f"{prefix} {_one_line(err)}", file=sys.stderr)
    except Exception as err:  # noqa: BLE001 - the last line of defence, says how to see more
        if os.environ.get("PRN_DEBUG"):
            raise
        print(f"{prefix} unexpected {type(err).__name__}: {_one_line(err)} "
              f"(rerun with PRN_DEBUG=1 for the traceback)", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
