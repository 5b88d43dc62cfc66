"""``edgeirst deploy``: a bundle for a Jetson profile, pushed over SSH if asked.

    edgeirst deploy bundle MODEL --out DIR [--profile P] ...     write the bundle
    edgeirst deploy push MODEL --host USER@ADDR ...              ... and push, install, start it
    edgeirst deploy verify DIR                                    check a bundle
    edgeirst deploy profiles [--json]                             the Jetson profiles

The one-command form of earlier releases, ``edgeirst deploy [--device jetson] ... MODEL`` (with
``--host`` to push, ``--list-profiles``, ``--verify DIR``), still works: it is read as the
subcommand it means. The run, tracker, sink and engine options become the runtime's own types
(``RunConfig``, ``SinkOptions``, ``BuildOptions``), written as they are into edgeirst.toml.
"""

from __future__ import annotations

import json
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import click

from edgeirst.cli.options import SIZE
from edgeirst.cli.stream_options import engine_options, pop_run_config, run_options
from edgeirst.errors import EdgeirstError
from edgeirst.jetson.bundle import BundleOptions, build_bundle
from edgeirst.jetson.config import load_config
from edgeirst.jetson.detect import detect_local, match_profile
from edgeirst.jetson.manifest import check_service_name, verify_bundle
from edgeirst.jetson.profiles import JETPACKS, profiles_table
from edgeirst.jetson.remote import PushOptions, SshTarget, check_remote_dir, plan_commands, probe, push
from edgeirst.runtime.engine_build import BUILDERS, BuildOptions
from edgeirst.runtime.sinks import SinkOptions

SUBCOMMANDS = ("bundle", "push", "verify", "profiles")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _list_profiles(as_json: bool) -> None:
    rows = profiles_table()
    if as_json:
        click.echo(json.dumps({"profiles": rows, "jetpacks": {k: v.__dict__ for k, v in JETPACKS.items()}}))
        return
    click.echo(f"{'profile':<16} {'module':<42} {'cc':>4} {'memory':>7} {'DLA':>3} {'FP16':>4} {'INT8':>4}  "
               f"{'JetPack':<12} {'TensorRT':<25} power modes")
    for r in rows:
        jp = r["jetpacks"][0] + ("-" + r["jetpacks"][-1] if len(r["jetpacks"]) > 1 else "")
        click.echo(f"{r['name']:<16} {r['module']:<42} {r['compute_capability']:>4} {r['memory_mb'] // 1024:>5}GB "
                   f"{r['dla_cores']:>3} {'yes' if r['fp16'] else 'no':>4} {'yes' if r['int8'] else 'no':>4}  "
                   f"{jp:<12} {','.join(r['tensorrt']):<25} {', '.join(r['power_modes']) or '(read on the device)'}")


def _pick_profile(profile: str | None, info) -> str:
    """The profile given, else the one detected on the device (probed over SSH) or on this machine."""

    if profile:
        return profile
    where = "this machine" if info is None else "the device"
    info = info or detect_local()
    found = match_profile(info)
    if found is None:
        raise EdgeirstError(f"cannot tell which Jetson {where} is ({info.model or info.arch or 'no device tree'}, "
                            f"L4T {info.l4t or '?'}); give --profile (edgeirst deploy profiles)")
    _stderr(f"detected {found.name} on {where}: {info.model}, L4T {info.l4t} (JetPack {info.jetpack})")
    return found.name


def _legacy_args(args: list[str]) -> list[str]:
    """The one-command form -> the subcommand it means; ``--input-size H W`` -> ``WxH`` (warned)."""
    args = list(args)
    for i in range(len(args) - 2):
        if args[i] == "--input-size" and args[i + 1].isdigit() and args[i + 2].isdigit():
            h, w = args.pop(i + 1), args.pop(i + 1)
            args.insert(i + 1, f"{w}x{h}")
            _stderr(f"warning: --input-size H W is the old spelling; use --input-size {w}x{h} (width x height)")
            break
    if not args or args[0] in SUBCOMMANDS or args[0] in ("--help", "-h"):
        return args
    if "--list-profiles" in args:
        return ["profiles"] + (["--json"] if "--json" in args else [])
    if "--verify" in args:
        i = args.index("--verify")
        return ["verify"] + args[i + 1:i + 2]
    return (["push"] if "--host" in args or any(a.startswith("--host=") for a in args) else ["bundle"]) + args


class DeployGroup(click.Group):
    """Subcommands, and the one-command form of earlier releases read as the one it means."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _legacy_args(args))


def _service_name(ctx, param, value):
    try:
        return check_service_name(value)
    except EdgeirstError as e:
        raise click.BadParameter(str(e).split(": ", 1)[-1]) from None


def _options(f: Callable, options: list) -> Callable:
    for option in reversed(options):
        f = option(f)
    return f


def bundle_options(f: Callable) -> Callable:
    """What goes into a bundle: ``bundle`` and ``push`` take the same."""
    f = _options(f, [
        click.argument("model"),
        click.option("--device", type=click.Choice(["jetson"]), default="jetson", show_default=True,
                     help="Target family (jetson, the only one today)."),
        click.option("--profile", help="Device profile, e.g. orin-nano (default: detected on the device; "
                                       "edgeirst deploy profiles lists them)."),
        click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp16", show_default=True,
                     help="Engine precision (INT8 on a Nano/TX2 falls back to FP16)."),
        click.option("--calib-data", type=click.Path(exists=True, file_okay=False),
                     help="SIRST-style dataset to calibrate INT8 on."),
        click.option("--calib-split", default="train", show_default=True, help="Calibration split."),
        click.option("--calib-images", type=click.IntRange(1, 100000), default=64, show_default=True,
                     help="Calibration images."),
        click.option("--val-split", default="val", show_default=True,
                     help="Split for quantize's accuracy guard ('none' to skip)."),
        click.option("--jetpack", help="Target one JetPack release (default: every release the profile runs)."),
        click.option("--source", default=BundleOptions.source, show_default=True,
                     help="Stream the service reads (camera index, /dev/videoN, rtsp://, csi://N, GStreamer, "
                          "synthetic://)."),
        click.option("--input-size", type=SIZE, metavar="WxH",
                     help="Largest frame the engine takes, WxH or N (default: 1920x1088, or a static model's size)."),
        run_options,
        click.option("--jsonl", default="-", show_default=True,
                     help="JSON lines sink on the device ('-' = the journal)."),
        click.option("--save", help="Annotated video file on the device."),
        click.option("--serve", metavar="HOST:PORT", help="MJPEG preview on the device."),
        click.option("--builder", type=click.Choice(BUILDERS), default=BuildOptions.builder, show_default=True,
                     help="Engine builder on the device: edgeirst's (TensorRT Python API) or trtexec."),
        engine_options,
        click.option("--power-mode", default="", help="nvpmodel mode name the service sets, e.g. MAXN_SUPER "
                                                      "(needs root)."),
        click.option("--jetson-clocks", is_flag=True, help="Lock clocks at the mode's maximum at start (needs root)."),
        click.option("--no-tegrastats", is_flag=True, help="Do not sample power with tegrastats on the device."),
        click.option("--wheel", type=click.Path(exists=True, dir_okay=False),
                     help="Ship this edgeirst wheel instead of the device wheel built from the installed edgeirst."),
        click.option("--extra-wheel", multiple=True, type=click.Path(exists=True, dir_okay=False),
                     help="More wheels to ship and unpack (e.g. onnxruntime-gpu for JetPack); repeatable."),
        click.option("--service-name", default=BundleOptions.service, show_default=True, callback=_service_name,
                     help="systemd unit name (letters, digits, _.@-)."),
        click.option("--dry-run", is_flag=True, help="Print every step without doing it."),
        click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
    ])
    return f


def _bundle_options(p: dict[str, Any], profile: str, out: Path) -> BundleOptions:
    """The click parameters of ``bundle_options`` -> BundleOptions (the run settings as RunConfig)."""
    if p["serve"] and ":" not in p["serve"]:
        raise EdgeirstError(f"--serve expects HOST:PORT, e.g. 0.0.0.0:8080, got {p['serve']!r}")
    val_split = p["val_split"]
    return BundleOptions(
        model=p["model"], profile=profile, out=out, precision=p["precision"], calib_data=p["calib_data"],
        calib_split=p["calib_split"], calib_images=p["calib_images"],
        val_split=None if val_split.lower() == "none" else val_split, jetpack=p["jetpack"], source=p["source"],
        input_size=p["input_size"], run=pop_run_config(p),
        sinks=SinkOptions(jsonl=p["jsonl"] or None, save=p["save"] or None, serve=p["serve"] or None),
        engine=BuildOptions(builder=p["builder"], workspace_mb=p["workspace_mb"], dla_core=p["dla_core"]),
        power_mode=p["power_mode"], jetson_clocks=p["jetson_clocks"], tegrastats=not p["no_tegrastats"],
        wheel=p["wheel"], extra_wheels=tuple(p["extra_wheel"]), service=p["service_name"])


def _report_bundle(result, dry_run: bool) -> dict:
    if not dry_run:
        _stderr(f"bundle {result.out}: {len(result.written)} file(s) written, {len(result.unchanged)} unchanged, "
                f"{len(result.removed)} removed")
    return result.to_dict()


@click.group("deploy", cls=DeployGroup)
def command():
    """Turn a model into a bundle for a Jetson profile (`deploy bundle`), push, install and start it
    on a device over SSH (`deploy push`), check a bundle (`deploy verify`), list the profiles
    (`deploy profiles`). `edgeirst deploy --device jetson ... MODEL` reads as `bundle` (or `push`
    with --host)."""


@command.command("profiles")
@click.option("--json", "as_json", is_flag=True, help="Print the profiles and JetPack releases as JSON.")
def profiles_command(as_json):
    """Print the Jetson profiles."""
    _list_profiles(as_json)


@command.command("verify")
@click.argument("bundle_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False))
def verify_command(bundle_dir):
    """Check a bundle: every file against manifest.json, and edgeirst.toml for validity."""
    problems = verify_bundle(Path(bundle_dir))
    if problems:
        raise EdgeirstError(f"bundle {bundle_dir} does not verify: {'; '.join(problems)}")
    load_config(Path(bundle_dir) / "edgeirst.toml")
    click.echo(f"bundle {bundle_dir}: every file matches manifest.json, edgeirst.toml is valid")


@command.command("bundle")
@bundle_options
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Bundle folder.")
def bundle_command(out, dry_run, as_json, **params):
    """Write the bundle of MODEL (.pt, .onnx or a shipped name such as `default`) for a Jetson profile."""
    opts = _bundle_options(params, _pick_profile(params["profile"], None), Path(out))
    summary = _report_bundle(build_bundle(opts, log=_stderr, dry_run=dry_run), dry_run)
    if as_json:
        click.echo(json.dumps(summary))


@command.command("push")
@bundle_options
@click.option("--out", type=click.Path(file_okay=False), help="Also keep the bundle in this folder.")
@click.option("--host", required=True, help="The device: USER@ADDRESS over SSH.")
@click.option("--port", type=click.IntRange(1, 65535), default=22, show_default=True, help="SSH port.")
@click.option("--key", type=click.Path(exists=True, dir_okay=False), help="SSH private key.")
@click.option("--known-hosts", type=click.Path(dir_okay=False), help="known_hosts file (default: ssh's).")
@click.option("--accept-new-host-key", is_flag=True,
              help="Trust the device's host key on first use (StrictHostKeyChecking=accept-new); a changed key is "
                   "still refused.")
@click.option("--remote-dir", default=PushOptions.remote_dir, show_default=True,
              help="Bundle folder on the device (relative to the user's home).")
@click.option("--remote-python", default=PushOptions.python, show_default=True, help="Python on the device.")
@click.option("--install-service", is_flag=True, help="Install, enable and start the systemd unit.")
@click.option("--run-seconds", type=click.IntRange(1, 3600), default=PushOptions.run_seconds, show_default=True,
              help="How long to run (or watch the service) on the device and report its output.")
def push_command(out, host, port, key, known_hosts, accept_new_host_key, remote_dir, remote_python, install_service,
                 run_seconds, dry_run, as_json, **params):
    """Write the bundle of MODEL, push it to the device over SSH, install it, run it (or start its service)."""
    target = SshTarget(host, port, key, known_hosts, accept_new_host_key)
    remote_dir = check_remote_dir(remote_dir)
    push_opts = PushOptions(remote_dir, remote_python, install_service, params["service_name"], run_seconds)
    if dry_run and not params["profile"]:
        raise EdgeirstError("--dry-run does not connect to the device: give --profile")
    # Connect first: a wrong host, key or host key fails in seconds, before any export or quantization.
    info = probe(target, push_opts) if not dry_run else None
    profile = _pick_profile(params["profile"], info)
    with tempfile.TemporaryDirectory(prefix="edgeirst-bundle-") as scratch:
        opts = _bundle_options(params, profile, Path(out) if out else Path(scratch) / "bundle")
        result = build_bundle(opts, log=_stderr, dry_run=dry_run)
        summary = _report_bundle(result, dry_run)
        if dry_run:
            _stderr(f"would probe: {shlex.join(target.argv('sh -s'))} < (pre-flight probe script)")
            for name, cmd in plan_commands(push_opts.remote_dir, push_opts).items():
                if name != ("run" if install_service else "service"):
                    _stderr(f"would {name}: {shlex.join(target.argv(cmd))}")
        else:
            report = push(target, result.out, result.manifest, push_opts, _stderr, info)
            summary["device"] = {**report.device.to_dict(), "directory": report.directory,
                                 "warnings": report.warnings}
            summary["output"] = report.output
            if not as_json:
                sys.stdout.write(report.output)
                sys.stdout.flush()
            for line in report.errors.splitlines():
                _stderr(f"  device: {line}")
    if as_json:
        click.echo(json.dumps(summary))
