"""`edgeirst deploy --host` for real: OpenSSH's sshd on 127.0.0.1 (random free port, throw-away
host and user keys, its own sshd_config) stands in for the Jetson; the "device home" is a temp
folder. The bundle is copied, installed offline, the launcher runs the shipped model on a
synthetic stream with the onnxruntime fallback and its JSON lines come back. Every process the
test starts (sshd and whatever it forks) is ended by its id, and the test checks none is left.

sshd comes from Debian's openssh-server (.ci/run installs it); without it these tests skip.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SSHD = shutil.which("sshd") or shutil.which("sshd", path="/usr/sbin:/usr/local/sbin")
SSH = shutil.which("ssh")
SOURCE = "synthetic://?seed=1&targets=3&scr=15-25&size=256x256"  # the default model finds these targets


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        out += kids
        frontier += kids
    return out


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
            if text in cmd:
                found.append(int(entry))
    return found


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgeirst-test", "-f", str(path)],
                   check=True, capture_output=True, timeout=30)
    return path.with_suffix(".pub").read_text().strip()


class LoopbackSshd:
    """sshd -D on 127.0.0.1 with everything in ``root``; ``stop()`` ends it and its children by pid."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.user = getpass.getuser()
        self.port = _free_port()
        self.host_key_pub = _keygen(root / "host_key")
        self.user_key = root / "user_key"
        (root / "authorized_keys").write_text(_keygen(self.user_key) + "\n")
        self.config = root / "sshd_config"
        self.config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\nPidFile {root / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {root / 'authorized_keys'}\nStrictModes no\nUsePAM no\nPubkeyAuthentication yes\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            f"AllowUsers {self.user}\nPrintMotd no\nPrintLastLog no\nLogLevel VERBOSE\n")
        self.log = root / "sshd.log"
        self.proc: subprocess.Popen | None = None
        self.seen: set[int] = set()

    def start(self) -> "LoopbackSshd":
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.skip(f"sshd does not start here: {self.log.read_text().strip()[-300:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        self.stop()
        pytest.skip("sshd did not listen within 15 s")

    def known_hosts(self, path: Path, key: str | None = None) -> Path:
        kind, blob = (key or self.host_key_pub).split()[:2]
        path.write_text(f"[127.0.0.1]:{self.port} {kind} {blob}\n")
        return path

    def note_children(self) -> None:
        if self.proc is not None:
            self.seen.update(_children(self.proc.pid))

    def stop(self) -> list[int]:
        """End sshd and every process it forked (by pid); returns the pids still alive after."""
        if self.proc is None:
            return []
        self.note_children()
        self.seen.update(_children(self.proc.pid))
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        alive = []
        for pid in sorted(self.seen):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            alive.append(pid)
        deadline = time.monotonic() + 10
        while alive and time.monotonic() < deadline:
            alive = [p for p in alive if Path(f"/proc/{p}").exists() and "Z" not in _state(p)]
            time.sleep(0.1)
        for pid in alive:
            os.kill(pid, signal.SIGKILL)
        self.proc = None
        return alive


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


@pytest.fixture
def sshd(tmp_path):
    if SSHD is None or SSH is None:
        pytest.skip("OpenSSH's sshd/ssh are not installed (Debian: apt-get install openssh-server openssh-client)")
    server = LoopbackSshd(tmp_path).start()
    yield server
    server.stop()


def _deploy(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeirst", "deploy", "--device", "jetson", *args],
                          capture_output=True, text=True, timeout=timeout)


def _ssh_args(server: LoopbackSshd, known_hosts: Path, key: Path | None = None) -> list[str]:
    return ["--host", f"{server.user}@127.0.0.1", "--port", str(server.port), "--key", str(key or server.user_key),
            "--known-hosts", str(known_hosts)]


@pytest.mark.slow  # 44 s: a whole deploy over SSH; the connection checks stay fast (2-core VM, busy)
def test_deploy_over_ssh_runs_the_model_on_the_device_and_leaves_no_process(sshd, tmp_path):
    device_home = tmp_path / "device-home"
    device_home.mkdir()
    known = tmp_path / "known_hosts"
    known.write_text("")
    r = _deploy("--profile", "orin-nano", "--source", SOURCE, "--out", str(tmp_path / "bundle"),
                *_ssh_args(sshd, known), "--accept-new-host-key", "--remote-dir", str(device_home / "edgeirst"),
                "--remote-python", sys.executable, "--run-seconds", "7", "default")
    sshd.note_children()
    left = sshd.stop()
    assert r.returncode == 0, r.stderr[-3000:]
    # trust on first use wrote the device's key to the known_hosts file we named
    assert sshd.host_key_pub.split()[1] in known.read_text()
    # installed offline on the "device": edgeirst imported from the bundle's lib, device check passed
    assert "ok: edgeirst 0.1.0 from " + str(device_home / "edgeirst" / "lib" / "edgeirst") in r.stderr
    assert "ok: the runtime does not import PyTorch" in r.stderr
    assert "TensorRT is not available here" in r.stderr and "onnxruntime" in r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(lines) >= 3, r.stdout[-2000:] + r.stderr[-2000:]
    assert all(line["source"] == SOURCE for line in lines)
    assert sum(len(line["detections"]) for line in lines) > 0, "no detections came back from the device"
    assert (device_home / "edgeirst" / "manifest.json").is_file()
    assert not (device_home / "edgeirst.new").exists() and not (device_home / "edgeirst.old").exists()
    # nothing the test started is still running: sshd, its session children, the launcher
    assert left == []
    assert _processes_mentioning(str(tmp_path)) == []


def test_unreachable_host_is_one_error_line(tmp_path):
    if SSH is None:
        pytest.skip("no ssh client")
    r = _deploy("--profile", "orin-nano", "--out", str(tmp_path / "b"), "--host", "nobody@127.0.0.1",
                "--port", str(_free_port()), "--known-hosts", str(tmp_path / "kh"), "default", timeout=60)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: cannot reach 127.0.0.1:") and "connection refused" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists()  # it failed before building anything


def test_refused_key_is_one_error_line(sshd, tmp_path):
    stranger = tmp_path / "stranger_key"
    _keygen(stranger)
    r = _deploy("--profile", "orin-nano", "--out", str(tmp_path / "b"),
                *_ssh_args(sshd, sshd.known_hosts(tmp_path / "kh"), stranger), "default", timeout=60)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: ") and "refused" in r.stderr and "Permission denied" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_changed_host_key_is_refused_even_with_accept_new(sshd, tmp_path):
    other = _keygen(tmp_path / "other_host_key")
    known = sshd.known_hosts(tmp_path / "kh", key=other)  # a different key recorded for [127.0.0.1]:port
    before = known.read_text()
    r = _deploy("--profile", "orin-nano", "--out", str(tmp_path / "b"), *_ssh_args(sshd, known),
                "--accept-new-host-key", "default", timeout=60)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: the host key of 127.0.0.1:") and "ssh-keygen -R" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert known.read_text() == before


def test_unknown_host_key_without_accept_new_is_refused(sshd, tmp_path):
    known = tmp_path / "kh"
    known.write_text("")
    r = _deploy("--profile", "orin-nano", "--out", str(tmp_path / "b"), *_ssh_args(sshd, known), "default", timeout=60)
    assert r.returncode == 2, r.stderr
    assert "--accept-new-host-key" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert known.read_text() == ""


def test_profile_is_detected_on_the_device_or_refused(sshd, tmp_path):
    """This loopback "device" is no Jetson: without --profile, deploy says so and stops."""
    r = _deploy("--out", str(tmp_path / "b"), *_ssh_args(sshd, sshd.known_hosts(tmp_path / "kh")),
                "--remote-python", sys.executable, "default", timeout=60)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: cannot tell which Jetson the device is") and "--profile" in r.stderr
