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
#   sh install.sh --service   ... and install, enable and (re)start the systemd unit (needs root or sudo)
# The wheels are unpacked with Python's zipfile (what pip does for pure-Python wheels), never
# resolved against an index: nothing is downloaded, no dependency is pulled, so JetPack's own
# OpenCV (with GStreamer) and TensorRT stay the ones Python imports, and PyTorch is not installed.
# EDGEIRST_PYTHON picks the interpreter (default: python3; edgeirst needs Python >= 3.10).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${{EDGEIRST_PYTHON:-python3}}
PY=$(command -v "$PY") || {{ echo "error: no Python interpreter $PY on this device" >&2; exit 2; }}
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
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
    UNIT=/etc/systemd/system/{service}.service
    sed -e "s|@BUNDLE@|$HERE|g" -e "s|@USER@|$(id -un)|g" {service}.service > {service}.service.rendered
    $SUDO cp {service}.service.rendered "$UNIT"
    rm -f {service}.service.rendered
    $SUDO systemctl daemon-reload
    $SUDO systemctl enable {service}.service
    $SUDO systemctl restart {service}.service
    echo "installed and started $UNIT"
fi
"""

SERVICE_UNIT = """# systemd unit of an edgeirst bundle (profile {profile}), written by `edgeirst deploy`.
# `sh install.sh --service` fills in @BUNDLE@ (this folder) and @USER@ (the installing user),
# installs it as /etc/systemd/system/{service}.service, enables and starts it.
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
ExecStart=/bin/sh @BUNDLE@/launch.sh
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
"""


def render(template: str, **values: str) -> str:
    return template.format(**values)
