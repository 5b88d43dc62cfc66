"""The bundle's scripts: ``launch.sh``, ``install.sh`` and the systemd unit ``edgeirst.service``.

They are thin on purpose: the logic lives in ``edgeirst.jetson.launch`` and
``edgeirst.jetson.check`` (installed from the bundle's wheel), so it is the same tested code on
every device. Plain POSIX ``sh``: JetPack 4 to 7 all have it.
"""

from __future__ import annotations

LAUNCH_SH = """#!/bin/sh
# edgeirst launcher (written by `edgeirst deploy`; profile {profile}).
# First start: builds the TensorRT engine on this device (cached per device and TensorRT version);
# then runs the detector with the settings in edgeirst.toml. Without TensorRT it runs on
# onnxruntime and says so. Extra arguments go to the launcher: --build-only, --max-frames N.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
[ -f "$HERE/installed.env" ] && . "$HERE/installed.env"
PY=${{EDGEIRST_PYTHON:-python3}}
export PYTHONPATH="$HERE/lib${{PYTHONPATH:+:$PYTHONPATH}}"
export PYTHONUNBUFFERED=1
exec "$PY" -m edgeirst.jetson.launch "$HERE/edgeirst.toml" "$@"
"""

INSTALL_SH = """#!/bin/sh
# Install this edgeirst bundle on the device, offline (written by `edgeirst deploy`).
#   sh install.sh             verify the files, unpack the wheels into ./lib, check the device
#   sh install.sh --service   ... and install, enable and (re)start the systemd unit (needs root: sudo
#                             without a password, or a terminal to type it; else it says what to allow)
# The wheels are unpacked with Python's zipfile (what pip does for pure-Python wheels), never
# resolved against an index: nothing is downloaded, no dependency is pulled, so JetPack's own
# OpenCV (with GStreamer) and TensorRT stay the ones Python imports, and PyTorch is not installed.
# EDGEIRST_PYTHON picks the interpreter (default: python3; the device side needs Python >= 3.8).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${{EDGEIRST_PYTHON:-python3}}
PY=$(command -v "$PY") || {{ echo "error: no Python interpreter $PY on this device" >&2; exit 2; }}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 8))' || {{
    echo "error: $PY is Python $("$PY" -V 2>&1 | cut -d' ' -f2); edgeirst needs Python >= 3.8 (JetPack 5.1 or newer;" \
         "elsewhere set EDGEIRST_PYTHON to a newer one)" >&2; exit 2; }}
cd "$HERE"
if command -v sha256sum >/dev/null 2>&1; then
    sha256sum -c --quiet SHA256SUMS || {{ echo "error: bundle files do not match SHA256SUMS" >&2; exit 2; }}
fi
rm -rf lib.new
mkdir lib.new
for whl in wheels/*.whl; do
    "$PY" -m zipfile -e "$whl" lib.new
done
rm -rf lib
mv lib.new lib
echo "EDGEIRST_PYTHON=$PY" > installed.env
PYTHONPATH="$HERE/lib" "$PY" -m edgeirst.jetson.check "$HERE"
if [ "${{1:-}}" = "--service" ]; then
    # The unit runs as the user who installs it (under sudo: the one who ran sudo), with that user's
    # engine cache, so `launch.sh --build-only` and the service share one cached engine.
    SVC_USER=${{SUDO_USER:-$(id -un)}}
    SVC_HOME=$(getent passwd "$SVC_USER" | cut -d: -f6)
    CACHE=${{EDGEIRST_CACHE:-${{SVC_HOME:-$HOME}}/.cache/edgeirst}}
    UNIT=/etc/systemd/system/{service}.service
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        if sudo -n true 2>/dev/null; then
            SUDO="sudo -n"
        elif [ -t 0 ]; then
            SUDO="sudo"  # a terminal: sudo asks for the password
        else
            echo "error: installing the service needs root, sudo asks for a password and there is no terminal to type" \
                 "it: run 'sudo sh $HERE/install.sh --service' on the device, or allow these commands without a" \
                 "password (sudo visudo): $SVC_USER ALL=(root) NOPASSWD: $(command -v install) -m 644" \
                 "$HERE/{service}.service.rendered $UNIT, $(command -v systemctl) daemon-reload," \
                 "$(command -v systemctl) enable {service}.service, $(command -v systemctl) restart {service}.service" >&2
            exit 2
        fi
    fi
    sed -e "s|@BUNDLE@|$HERE|g" -e "s|@USER@|$SVC_USER|g" -e "s|@CACHE@|$CACHE|g" \
        {service}.service > {service}.service.rendered
    $SUDO install -m 644 "$HERE/{service}.service.rendered" "$UNIT"
    rm -f {service}.service.rendered
    $SUDO systemctl daemon-reload
    $SUDO systemctl enable {service}.service
    $SUDO systemctl restart {service}.service
    echo "installed and started $UNIT (user $SVC_USER, engine cache $CACHE)"
fi
"""

SERVICE_UNIT = """# systemd unit of an edgeirst bundle (profile {profile}), written by `edgeirst deploy`.
# `sh install.sh --service` fills in @BUNDLE@ (this folder), @USER@ (the installing user, also under
# sudo) and @CACHE@ (that user's engine cache, shared with launch.sh), installs it as
# /etc/systemd/system/{service}.service, enables and starts it.
# Logs: journalctl -u {service} -f
[Unit]
Description=edgeirst infrared small-target detection ({profile})
After=network-online.target nvargus-daemon.service
Wants=network-online.target

[Service]
Type=simple
User=@USER@
WorkingDirectory=@BUNDLE@
Environment=PYTHONUNBUFFERED=1
Environment=EDGEIRST_CACHE=@CACHE@
ExecStart=/bin/sh @BUNDLE@/launch.sh
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
"""


def root_commands(bundle_dir: str, service: str) -> list[str]:
    """What ``install.sh --service`` runs as root (for a sudoers line when sudo asks for a password)."""
    unit = f"/etc/systemd/system/{service}.service"
    return [f"install -m 644 {bundle_dir}/{service}.service.rendered {unit}", "systemctl daemon-reload",
            f"systemctl enable {service}.service", f"systemctl restart {service}.service"]


def render(template: str, **values: str) -> str:
    return template.format(**values)
