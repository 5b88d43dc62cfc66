"""``edgeirst deploy --device jetson ... MODEL``: a bundle for a Jetson profile, optionally pushed over SSH."""

from __future__ import annotations

import json
import shlex
import sys
import tempfile
from pathlib import Path

import click

from edgeirst.errors import EdgeirstError
from edgeirst.jetson.bundle import BundleOptions, build_bundle
from edgeirst.jetson.detect import detect_local, match_profile
from edgeirst.jetson.manifest import verify_bundle
from edgeirst.jetson.profiles import JETPACKS, profiles_table
from edgeirst.jetson.remote import PushOptions, SshTarget, plan_commands, probe, push
from edgeirst.runtime.tracker import parse_confirm


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
                            f"L4T {info.l4t or '?'}); give --profile (edgeirst deploy --list-profiles)")
    _stderr(f"detected {found.name} on {where}: {info.model}, L4T {info.l4t} (JetPack {info.jetpack})")
    return found.name


@click.command("deploy")
@click.argument("model", required=False)
@click.option("--device", type=click.Choice(["jetson"]), help="Target family (jetson).")
@click.option("--profile", help="Device profile, e.g. orin-nano (default: detected on the device).")
@click.option("--list-profiles", is_flag=True, help="Print the Jetson profiles and exit.")
@click.option("--verify", "verify_dir", type=click.Path(exists=True, file_okay=False),
              help="Check an existing bundle's files against its manifest and exit.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp16", show_default=True,
              help="Engine precision (INT8 on a Nano/TX2 falls back to FP16).")
@click.option("--calib-data", type=click.Path(exists=True, file_okay=False),
              help="SIRST-style dataset to calibrate INT8 on.")
@click.option("--calib-split", default="train", show_default=True, help="Calibration split.")
@click.option("--calib-images", type=click.IntRange(1, 100000), default=64, show_default=True,
              help="Calibration images.")
@click.option("--val-split", default="val", show_default=True,
              help="Split for quantize's accuracy guard ('none' to skip).")
@click.option("--jetpack", help="Target one JetPack release (default: every release the profile runs).")
@click.option("--source", default="csi://0", show_default=True,
              help="Stream the service reads (camera index, /dev/videoN, rtsp://, csi://N, GStreamer, synthetic://).")
@click.option("--threshold", type=click.FloatRange(0, 1), help="Score threshold (default: the model's).")
@click.option("--input-size", type=(click.IntRange(min=1), click.IntRange(min=1)), metavar="H W",
              help="Largest frame the engine takes (default: the builder's 1088x1920, or a static model's size).")
@click.option("--fixed-size", is_flag=True, help="Scale frames to the model's input size instead of padding.")
@click.option("--track/--no-track", default=True, show_default=True, help="Temporal tracker on the device.")
@click.option("--confirm", default="3/5", show_default=True, help="Tracker M/N confirmation.")
@click.option("--gate", type=click.FloatRange(min=0, min_open=True), default=8.0, show_default=True,
              help="Tracker gate in pixels.")
@click.option("--jsonl", default="-", show_default=True, help="JSON lines sink on the device ('-' = the journal).")
@click.option("--save", default="", help="Annotated video file on the device.")
@click.option("--serve", default="", help="MJPEG preview HOST:PORT on the device.")
@click.option("--builder", type=click.Choice(["auto", "edgeirst", "trtexec"]), default="auto", show_default=True,
              help="Engine builder on the device.")
@click.option("--workspace-mb", type=click.IntRange(min=16), default=1024, show_default=True,
              help="TensorRT builder workspace.")
@click.option("--dla-core", type=click.IntRange(min=0), help="Run on this DLA core (GPU fallback on).")
@click.option("--power-mode", default="", help="nvpmodel mode name the service sets, e.g. MAXN_SUPER (needs root).")
@click.option("--jetson-clocks", is_flag=True, help="Lock clocks at the mode's maximum at start (needs root).")
@click.option("--no-tegrastats", is_flag=True, help="Do not sample power with tegrastats on the device.")
@click.option("--wheel", type=click.Path(exists=True, dir_okay=False),
              help="Use this edgeirst wheel instead of building one from the source tree.")
@click.option("--extra-wheel", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="More wheels to ship and unpack (e.g. onnxruntime-gpu for JetPack); repeatable.")
@click.option("--out", type=click.Path(file_okay=False), help="Bundle folder (required without --host).")
@click.option("--host", help="Push to USER@ADDRESS over SSH.")
@click.option("--port", type=click.IntRange(1, 65535), default=22, show_default=True, help="SSH port.")
@click.option("--key", type=click.Path(exists=True, dir_okay=False), help="SSH private key.")
@click.option("--known-hosts", type=click.Path(dir_okay=False), help="known_hosts file (default: ssh's).")
@click.option("--accept-new-host-key", is_flag=True,
              help="Trust the device's host key on first use (StrictHostKeyChecking=accept-new); a changed key is "
                   "still refused.")
@click.option("--remote-dir", default="edgeirst", show_default=True,
              help="Bundle folder on the device (relative to the user's home).")
@click.option("--remote-python", default="python3", show_default=True, help="Python on the device (>= 3.10).")
@click.option("--install-service", is_flag=True, help="Install, enable and start the systemd unit.")
@click.option("--service-name", default="edgeirst", show_default=True, help="systemd unit name.")
@click.option("--run-seconds", type=click.IntRange(1, 3600), default=8, show_default=True,
              help="How long to run (or watch the service) on the device and report its output.")
@click.option("--dry-run", is_flag=True, help="Print every step without doing it.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def command(model, device, profile, list_profiles, verify_dir, precision, calib_data, calib_split, calib_images,
            val_split, jetpack, source, threshold, input_size, fixed_size, track, confirm, gate, jsonl, save, serve,
            builder, workspace_mb, dla_core, power_mode, jetson_clocks, no_tegrastats, wheel, extra_wheel, out, host,
            port, key, known_hosts, accept_new_host_key, remote_dir, remote_python, install_service, service_name,
            run_seconds, dry_run, as_json):
    """Turn MODEL (.pt, .onnx or a shipped name such as `default`) into a bundle for a Jetson
    profile (--out DIR) and optionally push, install and start it on a device (--host)."""
    if list_profiles:
        return _list_profiles(as_json)
    if verify_dir:
        problems = verify_bundle(Path(verify_dir))
        if problems:
            raise EdgeirstError(f"bundle {verify_dir} does not verify: {'; '.join(problems)}")
        click.echo(f"bundle {verify_dir}: every file matches manifest.json")
        return None
    if device is None:
        raise EdgeirstError("give --device jetson (or --list-profiles)")
    if not model:
        raise EdgeirstError("give the MODEL to deploy: a .pt checkpoint, an .onnx model or `default`")

    parse_confirm(confirm)
    if serve and ":" not in serve:
        raise EdgeirstError(f"--serve expects HOST:PORT, e.g. 0.0.0.0:8080, got {serve!r}")
    if host is None and (install_service or key or known_hosts or accept_new_host_key):
        raise EdgeirstError("--install-service, --key, --known-hosts and --accept-new-host-key go with --host")
    if host is None and out is None:
        raise EdgeirstError("give --out DIR for the bundle (or --host to push it to a device)")
    target = SshTarget(host, port, key, known_hosts, accept_new_host_key) if host else None
    push_opts = PushOptions(remote_dir.removeprefix("~/"), remote_python, install_service, service_name, run_seconds)
    if target is not None and dry_run and not profile:
        raise EdgeirstError("--dry-run does not connect to the device: give --profile")
    # Connect first: a wrong host, key or host key fails in seconds, before any export or quantization.
    info = probe(target, push_opts) if target is not None and not dry_run else None
    profile_name = _pick_profile(profile, info)
    with tempfile.TemporaryDirectory(prefix="edgeirst-bundle-") as scratch:
        opts = BundleOptions(
            model=model, profile=profile_name, out=Path(out) if out else Path(scratch) / "bundle", precision=precision,
            calib_data=calib_data, calib_split=calib_split, calib_images=calib_images,
            val_split=None if val_split.lower() == "none" else val_split, jetpack=jetpack, source=source,
            threshold=threshold, input_size=input_size, fixed_size=fixed_size, track=track, confirm=confirm, gate=gate,
            jsonl=jsonl, save=save, serve=serve, builder=builder, workspace_mb=workspace_mb, dla_core=dla_core,
            power_mode=power_mode, jetson_clocks=jetson_clocks, tegrastats=not no_tegrastats, wheel=wheel,
            extra_wheels=tuple(extra_wheel), service=service_name)
        result = build_bundle(opts, log=_stderr, dry_run=dry_run)
        summary = result.to_dict()
        if not dry_run:
            _stderr(f"bundle {result.out}: {len(result.written)} file(s) written, {len(result.unchanged)} unchanged, "
                    f"{len(result.removed)} removed")
        if target is not None:
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
    return None
