"""Push a bundle to a Jetson over SSH with the system OpenSSH client, and start it.

Steps: pre-flight probe (JetPack/L4T, TensorRT, Python, free disk and memory), copy (a tar stream
into ``DIR.new``, checked with ``sha256sum -c`` before it replaces ``DIR``), install (``install.sh``:
wheels unpacked, device check), engine build (``launch.sh --build-only``), then either the
service (``install.sh --service``: systemd enable + restart, then the journal's first seconds) or
a foreground run of ``launch.sh`` for ``run_seconds`` whose output is reported.

Host keys are checked as OpenSSH checks them: ``StrictHostKeyChecking=yes`` against known_hosts,
or ``accept-new`` (trust on first use, never a changed key) with ``--accept-new-host-key``; never
``no``. ``BatchMode=yes``: no SSH password prompt ever blocks a deploy. ``--install-service`` where
sudo wants a password runs the root step over ``ssh -t`` so the user types it, or, without a
terminal, stops before copying and names the commands to allow without one. SSH failures a user can cause
(unreachable host, refused key, unknown or changed host key) are one clear error line.
"""

from __future__ import annotations

import io
import re
import shlex
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from edgeirst.errors import EdgeirstError
from edgeirst.jetson import templates
from edgeirst.jetson.detect import DeviceInfo, match_profile, parse_probe, python_ok
from edgeirst.runtime.trt_api import MIN_JETPACK, api_for
from edgeirst.runtime.trt_policy import int8_form

PROBE = r"""
PY={py}
D={dir}
case "$D" in /*) ;; *) D="$HOME/$D" ;; esac
echo "dir=$D"
echo "arch=$(uname -m)"
[ -r /etc/nv_tegra_release ] && echo "nv_tegra_release=$(head -n 1 /etc/nv_tegra_release)"
[ -r /proc/device-tree/model ] && echo "model=$(tr -d '\000' < /proc/device-tree/model)"
[ -r /proc/device-tree/compatible ] && echo "compatible=$(tr '\000' '|' < /proc/device-tree/compatible)"
command -v dpkg-query >/dev/null 2>&1 && echo "l4t_core=$(dpkg-query --showformat='${{Version}}' --show nvidia-l4t-core 2>/dev/null)"
echo "python=$("$PY" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)"
echo "tensorrt=$("$PY" -c 'import tensorrt; print(tensorrt.__version__)' 2>/dev/null)"
echo "trtexec=$(command -v trtexec 2>/dev/null || ls /usr/src/tensorrt/bin/trtexec 2>/dev/null)"
echo "meminfo_total_kb=$(awk '/^MemTotal:/ {{print $2}}' /proc/meminfo)"
echo "meminfo_available_kb=$(awk '/^MemAvailable:/ {{print $2}}' /proc/meminfo)"
P="$D"; while [ ! -d "$P" ]; do P=$(dirname "$P"); done
echo "disk_free_kb=$(df -Pk "$P" | awk 'NR==2 {{print $4}}')"
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then echo systemd=yes; else echo systemd=no; fi
echo "user=$(id -un)"
echo "uid=$(id -u)"
"""


@dataclass
class SshTarget:
    """``user@host`` reached with the system ssh client and OpenSSH's host key checking."""

    destination: str
    port: int = 22
    key: str | None = None
    known_hosts: str | None = None
    accept_new_host_key: bool = False
    connect_timeout: int = 15

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9._-]+@[A-Za-z0-9.:_\[\]-]+", self.destination or ""):
            raise EdgeirstError(f"--host expects USER@ADDRESS (e.g. jetson@192.168.1.20), got {self.destination!r}")
        if self.key and not Path(self.key).expanduser().is_file():
            raise EdgeirstError(f"--key {self.key} does not exist")
        self.host = self.destination.split("@", 1)[1]

    @property
    def where(self) -> str:
        return f"{self.destination} (port {self.port})"

    def options(self) -> list[str]:
        opts = ["-p", str(self.port), "-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}",
                "-o", f"StrictHostKeyChecking={'accept-new' if self.accept_new_host_key else 'yes'}",
                "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]
        if self.known_hosts:
            opts += ["-o", f"UserKnownHostsFile={Path(self.known_hosts).expanduser()}"]
        if self.key:
            opts += ["-i", str(Path(self.key).expanduser()), "-o", "IdentitiesOnly=yes"]
        return opts

    def argv(self, command: str, tty: bool = False) -> list[str]:
        return ["ssh", *self.options(), *(["-t"] if tty else []), self.destination, command]

    def _ssh(self, argv: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(argv, timeout=timeout, **kwargs)
        except FileNotFoundError:
            raise EdgeirstError("the ssh client is not installed on this machine (apt install openssh-client)") from None
        except subprocess.TimeoutExpired:
            raise EdgeirstError(f"{self.where}: the remote step did not finish in {timeout:.0f} s") from None

    def run_on_terminal(self, command: str, timeout: float = 600) -> int:
        """Run ``command`` with a terminal (``ssh -t``) on this one, so that the user can answer sudo's
        password prompt; its output goes straight to the terminal. Returns the exit status."""
        r = self._ssh(self.argv(command, tty=True), timeout)
        if r.returncode == 255:
            raise EdgeirstError(f"{self.where}: ssh failed (exit status 255)")
        return r.returncode

    def run(self, command: str, stdin: bytes | None = None, timeout: float = 600, check: bool = True,
            stream: Callable[[str], None] | None = None) -> subprocess.CompletedProcess:
        """Run ``command`` on the device; SSH-level failures become one-line EdgeirstErrors."""
        r = self._ssh(self.argv(command), timeout, input=stdin, capture_output=True)
        out = r.stdout.decode("utf-8", "replace")
        err = r.stderr.decode("utf-8", "replace")
        if r.returncode == 255:
            raise ssh_error(self, err)
        if check and r.returncode != 0:
            tail = [ln for ln in (err or out).splitlines() if ln.strip()][-4:]
            raise EdgeirstError(f"{self.where}: `{command.strip().splitlines()[0][:80]}` failed with exit status "
                                f"{r.returncode}: {' | '.join(tail)}")
        return subprocess.CompletedProcess(r.args, r.returncode, out, err)


def ssh_error(target: SshTarget, stderr: str) -> EdgeirstError:
    """ssh's stderr (exit status 255) -> what happened, in one line, with the fix."""
    text = stderr.strip()
    last = next((ln for ln in reversed(text.splitlines()) if ln.strip() and not ln.startswith("@")), text)
    hosts = target.known_hosts or "~/.ssh/known_hosts"
    name = target.host if target.port == 22 else f"[{target.host}]:{target.port}"
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or "Host key for" in text and "has changed" in text:
        return EdgeirstError(f"the host key of {target.host}:{target.port} is not the one recorded in {hosts} "
                             f"(a re-flashed device, or someone in between); check its fingerprint, then remove the old "
                             f"key with: ssh-keygen -R '{name}' -f {hosts}")
    if "Host key verification failed" in text or "No " in text and "host key is known" in text:
        return EdgeirstError(f"{target.host}:{target.port} is not in {hosts}; check the device's host key fingerprint "
                             "and re-run with --accept-new-host-key (trust on first use), or add it to known_hosts")
    if "Permission denied" in text:
        key = target.key or "your default keys"
        return EdgeirstError(f"{target.destination} refused {key} (Permission denied); install the public key on the "
                             "device (ssh-copy-id) or pass the right one with --key")
    for pattern, why in (("Connection refused", "connection refused"), ("timed out", "connection timed out"),
                         ("No route to host", "no route to host"), ("Could not resolve hostname", "unknown host name"),
                         ("Network is unreachable", "network unreachable"), ("Connection closed", "connection closed"),
                         ("Connection reset", "connection reset")):
        if pattern in text:
            return EdgeirstError(f"cannot reach {target.host}:{target.port}: {why}")
    return EdgeirstError(f"ssh to {target.where} failed: {last[:300] or 'exit status 255'}")


def tar_stream(bundle: Path, files: list[str]) -> bytes:
    """The bundle's files as an uncompressed tar (deterministic: fixed order, owner and times)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            path = bundle / name
            info = tar.gettarinfo(str(path), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            with open(path, "rb") as f:
                tar.addfile(info, f)
    return buf.getvalue()


def check_remote_dir(text: str) -> str:
    """The bundle folder on the device as ``--remote-dir`` gives it: relative to the user's home
    (a leading ``~/`` dropped) or absolute (the user's explicit choice, e.g. /opt/edgeirst); never
    the home or root itself, never climbing out with ``..``, no control characters (NUL, newline)."""
    path = text[2:] if text.startswith("~/") else text
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(ord(c) < 32 or c == "\x7f" for c in path):
        problem = "contains a control character (NUL, newline...)"
    elif ".." in parts:
        problem = "climbs out of its folder with '..'"
    elif not parts or path.strip() in ("~", "$HOME"):
        problem = "is the home or root folder itself, where the bundle would mix with everything there"
    else:
        return path
    raise EdgeirstError(f"--remote-dir {text!r} {problem}; give a folder such as edgeirst (in the home) or "
                        "/opt/edgeirst")


@dataclass
class PushOptions:
    remote_dir: str = "edgeirst"
    python: str = "python3"
    install_service: bool = False
    service: str = "edgeirst"
    run_seconds: int = 8


@dataclass
class PushReport:
    device: DeviceInfo
    directory: str
    warnings: list[str] = field(default_factory=list)
    output: str = ""
    errors: str = ""


def probe(target: SshTarget, opts: PushOptions) -> DeviceInfo:
    script = PROBE.format(py=shlex.quote(opts.python), dir=shlex.quote(opts.remote_dir))
    return parse_probe(target.run("sh -s", stdin=script.encode(), timeout=120).stdout)


def remote_preflight(info: DeviceInfo, manifest: dict, bundle_bytes: int, opts: PushOptions) -> list[str]:
    """Errors raise; returns warnings. ``manifest`` is the bundle's (profile, expected versions)."""
    warnings = []
    if not python_ok(info.python):
        raise EdgeirstError(f"the device's {opts.python} is {info.python or 'missing'}; edgeirst needs Python >= 3.8 "
                            "on the device (JetPack 5.1+ has 3.8; elsewhere install one and pass --remote-python)")
    if not info.is_jetson:
        warnings.append(f"the device is not a Jetson ({info.arch or '?'}, no /etc/nv_tegra_release): no TensorRT "
                        "engine there, the launcher falls back to onnxruntime")
    else:
        detected = match_profile(info)
        want = manifest.get("profile", {}).get("name")
        if detected and want and detected.name != want:
            warnings.append(f"the bundle is for {want} but the device looks like {detected.name} ({info.model})")
        expected = manifest.get("expects", {}).get("jetpack", [])
        if info.jetpack and expected and info.jetpack not in expected:
            warnings.append(f"the device runs JetPack {info.jetpack} (L4T {info.l4t}); the bundle expects "
                            f"{', '.join(expected)}")
    precision = manifest.get("precision", {}).get("effective")
    has_cache = "calibration.cache" in manifest.get("files", {})
    has_qdq = "model.int8.onnx" in manifest.get("files", {})
    if info.tensorrt and api_for(info.tensorrt) is None:
        raise EdgeirstError(f"the device has TensorRT {info.tensorrt} (JetPack {info.jetpack or '?'}): edgeirst needs "
                            f"JetPack {MIN_JETPACK} or newer (TensorRT >= 8.5); upgrade JetPack")
    if info.tensorrt:
        qdq = int8_form(info.tensorrt) == "qdq"
        if precision == "int8" and not (has_qdq if qdq else has_cache):
            raise EdgeirstError(f"the device has TensorRT {info.tensorrt}, and this INT8 bundle has no form for it "
                                f"({'QDQ model' if qdq else 'calibration cache'}); redeploy with --jetpack "
                                f"{info.jetpack or '...'} and --calib-data")
    else:
        warnings.append(f"TensorRT does not import for {opts.python} on the device: the launcher will run on onnxruntime")
    need_mb = 2 * bundle_bytes // 2**20 + 64
    if info.disk_free_mb is not None and info.disk_free_mb < need_mb:
        raise EdgeirstError(f"the device has {info.disk_free_mb} MiB free where the bundle goes; it needs {need_mb} MiB")
    estimate = manifest.get("preflight", {}).get("memory_estimate_mb")
    if estimate and info.mem_total_mb and info.mem_total_mb < estimate:
        raise EdgeirstError(f"the device has {info.mem_total_mb} MiB of memory; the model needs about {estimate} MiB")
    if estimate and info.mem_available_mb is not None and info.mem_available_mb < estimate:
        warnings.append(f"only {info.mem_available_mb} MiB of memory are free on the device now; the model needs "
                        f"about {estimate} MiB")
    if opts.install_service and info.systemd is False:
        raise EdgeirstError("--install-service: the device does not run systemd")
    return warnings


def plan_commands(d: str, opts: PushOptions) -> dict[str, str]:
    """The remote shell command of each step (``d`` = the bundle folder on the device)."""
    q, env = shlex.quote(d), f"EDGEIRST_PYTHON={shlex.quote(opts.python)}"
    new, old = shlex.quote(d + ".new"), shlex.quote(d + ".old")
    return {
        "copy": f"rm -rf {new} && mkdir -p {new} && tar -xf - -C {new} && cd {new} && sha256sum -c --quiet SHA256SUMS "
                f"&& rm -rf {old} && {{ [ ! -d {q} ] || mv {q} {old}; }} && mv {new} {q} && rm -rf {old}",
        "install": f"{env} sh {q}/install.sh",
        "build": f"sh {q}/launch.sh --build-only",
        "service": f"S=$(date '+%Y-%m-%d %H:%M:%S') && {env} sh {q}/install.sh --service && sleep {opts.run_seconds} "
                   f"&& J=journalctl && {{ [ \"$(id -u)\" -eq 0 ] || J='sudo -n journalctl'; }} && "
                   f"$J -u {shlex.quote(opts.service)} --since \"$S\" --no-pager -o cat",
        "run": f"timeout -s TERM -k 10 {opts.run_seconds} sh {q}/launch.sh; s=$?; [ $s -eq 124 ] && exit 0; exit $s",
    }


def push(target: SshTarget, bundle: Path, manifest: dict, opts: PushOptions, log: Callable[[str], None],
         info: DeviceInfo | None = None) -> PushReport:
    """Pre-flight, copy, install, build, then the service or a timed foreground run."""
    info = info or probe(target, opts)
    files = sorted(manifest["files"]) + ["manifest.json", "SHA256SUMS"]
    payload = tar_stream(bundle, files)
    warnings = remote_preflight(info, manifest, len(payload), opts)
    for w in warnings:
        log(f"warning: {w}")
    d = info.directory or opts.remote_dir
    steps = plan_commands(d, opts)
    on_terminal = opts.install_service and info.uid != 0 and \
        target.run("sudo -n true", timeout=60, check=False).returncode != 0
    if on_terminal and not sys.stdin.isatty():
        raise EdgeirstError(f"--install-service: sudo on {target.destination} asks for a password and there is no "
                            "terminal here to type it: deploy from a terminal, or allow these commands without a password "
                            f"on the device (sudo visudo): {info.user or 'USER'} ALL=(root) NOPASSWD: "
                            + ", ".join(templates.root_commands(d, opts.service)))
    log(f"copy {len(files)} files ({len(payload) / 2**20:.1f} MiB) to {target.destination}:{d}")
    target.run(steps["copy"], stdin=payload, timeout=1800)
    log("install on the device (offline: wheels unpacked, no dependency pulled), check imports")
    r = target.run(steps["install"], timeout=600, check=False)
    for line in (r.stdout + r.stderr).splitlines():
        log(f"  device: {line}")
    if r.returncode != 0:
        raise EdgeirstError(f"the device check failed on {target.destination} (see the error lines above)")
    log("prepare the engine on the device (TensorRT build on first start, or the onnxruntime fallback)")
    r = target.run(steps["build"], timeout=3600)
    for line in r.stderr.splitlines():
        log(f"  device: {line}")
    report = PushReport(info, d, warnings)
    key = "service" if opts.install_service else "run"
    log(("install and start the systemd service" if opts.install_service else "run the launcher")
        + f", first {opts.run_seconds} s of output:")
    if key == "service" and on_terminal:  # sudo asks for the password on this terminal; output shown there
        log(f"sudo on {target.destination} asks for a password: answer it below (ssh -t)")
        status = target.run_on_terminal(steps[key], timeout=opts.run_seconds + 600)
        if status != 0:
            raise EdgeirstError(f"{target.where}: installing the service failed with exit status {status} (see above)")
        report.output, report.errors = "(shown above)", ""
        return report
    r = target.run(steps[key], timeout=opts.run_seconds + 600)
    report.output, report.errors = r.stdout, r.stderr
    return report
