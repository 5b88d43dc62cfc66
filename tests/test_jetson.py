"""edgeirst.jetson without a Jetson: profiles as data, device detection and nvpmodel parsing on
real strings read off devices (each sample says where it was published), edgeirst.toml, the
launcher's choice of engine input. The power tools themselves run only where JetPack is."""

from __future__ import annotations

import shutil

import pytest

from edgeirst.errors import EdgeirstError
from edgeirst.jetson import config as tomlcfg
from edgeirst.jetson.bundle import config_text
from edgeirst.jetson.detect import (DeviceInfo, detect_local, match_profile, parse_device_tree_string,
                                    parse_l4t_core_version, parse_nv_tegra_release, parse_probe)
from edgeirst.jetson.launch import engine_plan
from edgeirst.jetson.power import (jetson_clocks, parse_nvpmodel_conf, parse_nvpmodel_query, query_power_mode,
                                   resolve_power_mode)
from edgeirst.jetson.profiles import JETPACKS, PROFILES, get_profile, jetpack_for_l4t, select_releases
from edgeirst.runtime.trt_versions import version_tuple
from edgeirst.runtime.engine_build import BuildOptions
from edgeirst.runtime.pipeline import RunConfig
from edgeirst.runtime.sinks import SinkOptions
from edgeirst.runtime.tracker import TrackerConfig

# -- profiles ------------------------------------------------------------------------------------


def test_every_profile_names_known_jetpacks_and_a_consistent_gpu():
    archs = {(5, 3): "Maxwell", (6, 2): "Pascal", (7, 2): "Volta", (8, 7): "Ampere", (11, 0): "Blackwell"}
    for p in PROFILES.values():
        assert p.jetpacks and all(j in JETPACKS for j in p.jetpacks), p.name
        assert archs[p.compute_capability] == p.gpu, p.name
        assert p.int8 == (p.compute_capability >= (7, 2)), p.name  # no INT8 before Volta's tensor cores
        assert p.fp16
        assert (p.tensor_cores > 0) == p.int8
        for pm in p.power:
            assert set(pm.jetpacks) <= set(p.jetpacks), p.name
            assert pm.default is None or pm.default in pm.modes


def test_jetpack_table_matches_the_issue_and_nvidia():
    # JetPack 4.6 -> TensorRT 8.0 then 8.2 from 4.6.1, 5.1 -> 8.5, 6.0 -> 8.6, 6.1/6.2 -> 10.3
    assert JETPACKS["4.6"].tensorrt.startswith("8.0") and JETPACKS["4.6.1"].tensorrt.startswith("8.2")
    assert JETPACKS["5.1"].tensorrt.startswith("8.5") and JETPACKS["6.0"].tensorrt.startswith("8.6")
    assert JETPACKS["6.1"].tensorrt.startswith("10.3") and JETPACKS["6.2"].tensorrt.startswith("10.3")
    assert {r.python for r in JETPACKS.values()} == {"3.6", "3.8", "3.10", "3.12"}
    assert jetpack_for_l4t("36.4.3") == "6.2" and jetpack_for_l4t("35.1") == "5.0.2"
    assert jetpack_for_l4t("32.7.1") == "4.6.1" and jetpack_for_l4t("36.9.9") is None


def test_family_facts():
    assert get_profile("nano").dla_cores == 0 and not get_profile("nano").int8
    assert get_profile("orin-nano").dla_cores == 0 and get_profile("orin-nx").dla_cores == 2
    assert get_profile("agx-orin").memory_mb == 65536 and get_profile("agx-orin-32gb").memory_mb == 32768
    assert "MAXN_SUPER" in get_profile("orin-nano-super").power_mode_names()
    assert "MAXN_SUPER" not in get_profile("orin-nano").power_mode_names("6.0")
    assert get_profile("Orin_Nano").name == "orin-nano"
    assert get_profile("agx-thor").jetpacks == ("7.0",)


def test_unknown_profile_suggests_close_names():
    with pytest.raises(EdgeirstError, match="did you mean orin-nano"):
        get_profile("orin-nan")


def test_select_releases():
    assert [r.jetpack for r in select_releases(get_profile("orin-nx"), "6.2")] == ["6.2"]
    with pytest.raises(EdgeirstError, match="does not run on Jetson Nano"):
        select_releases(get_profile("nano"), "6.2")


def test_version_tuple():
    assert version_tuple("10.3.0.30-1+cuda12.5") == (10, 3, 0, 30)
    assert version_tuple("8.5.2.2") == (8, 5, 2, 2) and version_tuple("") == ()


# -- detection: real strings ---------------------------------------------------------------------
# Orin Nano Super dev kit, JetPack 6.2: lkk688/edgeAI docs/curriculum/02a_linux_basics.md
ORIN_NANO_SUPER_RELEASE = ("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
                           "DATE: Wed Jan  8 01:49:37 UTC 2025")
ORIN_NANO_SUPER_MODEL = "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super"
# its /proc/device-tree/compatible as cat printed it (the NULs between the strings are not shown)
ORIN_NANO_SUPER_COMPATIBLE = b"nvidia,p3768-0000+p3767-0005-super\0nvidia,p3767-0005\0nvidia,tegra234\0"
# Jetson Nano, JetPack 4.6.6: ay65535/dotfiles local/share/jetson-nano/firstrun.sh;
# TX2, JetPack 4.5.1: pokusew/ros-setup nvidia-jetson-tx2/L4T.md
NANO_RELEASE = "# R32 (release), REVISION: 7.6, GCID: 38171779, BOARD: t210ref, EABI: aarch64, DATE: Tue Nov  5 07:46:14 UTC 2024"
TX2_RELEASE = "# R32 (release), REVISION: 5.1, GCID: 26202423, BOARD: t186ref, EABI: aarch64, DATE: Fri Feb 19 16:50:29 UTC 2021"
# /proc/device-tree/model strings exactly as a public GPU-frequency shell script compares them
# (`model=$(tr -d '\0' < /proc/device-tree/model)`; found by the code search, repository not named there)
NANO_MODEL, XNX_MODEL, AGX_XAVIER_MODEL = ("NVIDIA Jetson Nano Developer Kit", "NVIDIA Jetson Xavier NX Developer Kit",
                                           "Jetson-AGX")


@pytest.mark.parametrize("line, l4t, board", [
    (ORIN_NANO_SUPER_RELEASE, "36.4.3", "generic"),
    (NANO_RELEASE, "32.7.6", "t210ref"),
    (TX2_RELEASE, "32.5.1", "t186ref"),
])
def test_parse_nv_tegra_release(line, l4t, board):
    assert parse_nv_tegra_release(line) == (l4t, board)


@pytest.mark.parametrize("text, l4t", [
    ("36.4.4-20250616085344", "36.4.4"),  # a Go test comment next to R36 REVISION 4.4 (code search)
    ("36.4.7-20250918154033", "36.4.7"),  # an Orin NX AV1 roadmap document (code search)
    ("'36.5.0-20260115194252'", "36.5.0"),  # jetson-stats' dpkg-query --showformat='${Version}' keeps the quotes
    ("", None), ("not a version", None),
])
def test_parse_l4t_core_version(text, l4t):
    assert parse_l4t_core_version(text) == l4t


def _tree(root, release=None, model=None, compatible=None, mem_kb=None):
    if release is not None:
        (root / "etc").mkdir(parents=True, exist_ok=True)
        (root / "etc/nv_tegra_release").write_text(release + "\n")
    (root / "proc/device-tree").mkdir(parents=True, exist_ok=True)
    if model is not None:
        (root / "proc/device-tree/model").write_bytes(model.encode() + b"\0")
    if compatible is not None:
        (root / "proc/device-tree/compatible").write_bytes(compatible)
    if mem_kb is not None:
        (root / "proc/meminfo").write_text(f"MemTotal:       {mem_kb} kB\nMemAvailable:   {mem_kb // 2} kB\n")
    return root


def test_detect_orin_nano_super_from_its_files(tmp_path):
    info = detect_local(_tree(tmp_path, ORIN_NANO_SUPER_RELEASE, ORIN_NANO_SUPER_MODEL, ORIN_NANO_SUPER_COMPATIBLE,
                              7802880))  # 7620 MB, as its tegrastats line reports
    assert info.l4t == "36.4.3" and info.jetpack == "6.2" and info.soc == "tegra234"
    assert info.model == ORIN_NANO_SUPER_MODEL and "p3767-0005" in info.p_numbers
    assert info.mem_total_mb == 7620
    assert match_profile(info).name == "orin-nano-super"


def test_detect_by_model_string_and_memory(tmp_path):
    nano = detect_local(_tree(tmp_path / "n", NANO_RELEASE, NANO_MODEL, None, 4059136))  # 3964 MB (its tegrastats)
    assert nano.jetpack == "4.6.6" and match_profile(nano).name == "nano"
    assert match_profile(DeviceInfo(model=XNX_MODEL, mem_total_mb=7771)).name == "xavier-nx"
    assert match_profile(DeviceInfo(model=AGX_XAVIER_MODEL, mem_total_mb=15692)).name == "agx-xavier-16gb"
    # Orin Nano 8GB before JetPack 6.2 is the plain profile
    pre = DeviceInfo(l4t="36.3.0", compatible=parse_device_tree_string(b"nvidia,p3768-0000+p3767-0005\0nvidia,tegra234"))
    assert match_profile(pre).name == "orin-nano"
    assert match_profile(DeviceInfo(model="Raspberry Pi 4 Model B")) is None


def test_detect_on_a_machine_without_jetson_files(tmp_path):
    info = detect_local(tmp_path)
    assert not info.is_jetson and info.l4t is None and match_profile(info) is None


def test_parse_probe_output():
    text = ("dir=/home/jetson/edgeirst\narch=aarch64\nnv_tegra_release=" + ORIN_NANO_SUPER_RELEASE + "\n"
            "model=" + ORIN_NANO_SUPER_MODEL + "\ncompatible=nvidia,p3768-0000+p3767-0005-super|nvidia,p3767-0005|"
            "nvidia,tegra234|\nl4t_core=36.4.3-20250107174145\npython=3.10.12\ntensorrt=10.3.0\ntrtexec=\n"
            "meminfo_total_kb=7802880\nmeminfo_available_kb=4000000\ndisk_free_kb=20480000\nsystemd=yes\n"
            "user=jetson\nuid=1000\nnoise line\n")
    info = parse_probe(text)
    assert (info.l4t, info.jetpack, info.python, info.tensorrt) == ("36.4.3", "6.2", "3.10.12", "10.3.0")
    assert info.disk_free_mb == 20000 and info.systemd is True and info.uid == 1000 and info.trtexec is None
    assert match_profile(info).name == "orin-nano-super"


# -- nvpmodel / jetson_clocks --------------------------------------------------------------------
# Orin Nano Super /etc/nvpmodel.conf POWER_MODEL lines, as quoted from a device in a bring-up log
# (code search: "Mode 0 is 15 W, not max performance ... MAXN_SUPER"), and the Xavier NX list with its
# PM_CONFIG DEFAULT=2 (a JetPack 5.1.2 fixture, code search); the `nvpmodel -q` output is from
# lkk688/edgeAI docs/curriculum/02a_linux_basics.md.
ORIN_NANO_SUPER_CONF = """< POWER_MODEL ID=0 NAME=15W >
< POWER_MODEL ID=1 NAME=25W >
< POWER_MODEL ID=2 NAME=MAXN_SUPER >
< POWER_MODEL ID=3 NAME=7W >
"""
XAVIER_NX_CONF = """< PM_CONFIG DEFAULT=2 >
< POWER_MODEL ID=0 NAME=MODE_15W_2CORE >
CPU_ONLINE CORE_0 1
< POWER_MODEL ID=2 NAME=MODE_15W_6CORE >
< POWER_MODEL ID=8 NAME=MODE_20W_6CORE >
"""


def test_parse_nvpmodel_conf_and_query():
    modes, default = parse_nvpmodel_conf(ORIN_NANO_SUPER_CONF)
    assert [(m.id, m.name) for m in modes] == [(0, "15W"), (1, "25W"), (2, "MAXN_SUPER"), (3, "7W")]
    assert default is None
    modes, default = parse_nvpmodel_conf(XAVIER_NX_CONF)
    assert default == 2 and modes[-1].name == "MODE_20W_6CORE"
    q = parse_nvpmodel_query("NV Power Mode: MAXN_SUPER\n2\n")
    assert (q.id, q.name) == (2, "MAXN_SUPER")
    assert parse_nvpmodel_query("nvpmodel: command not found") is None
    # the profile tables agree with what the device ships
    super_modes = get_profile("orin-nano-super").power[0].modes
    assert super_modes == {m.id: m.name for m in parse_nvpmodel_conf(ORIN_NANO_SUPER_CONF)[0]}


def test_resolve_power_mode_by_name_or_id():
    assert resolve_power_mode("maxn_super", ORIN_NANO_SUPER_CONF).id == 2
    assert resolve_power_mode(3, ORIN_NANO_SUPER_CONF).name == "7W"
    with pytest.raises(EdgeirstError, match="0=15W, 1=25W"):
        resolve_power_mode("MAXN", ORIN_NANO_SUPER_CONF)


@pytest.mark.skipif(shutil.which("nvpmodel") is None, reason="nvpmodel ships with JetPack; not on this machine")
def test_query_power_mode_on_a_jetson():
    mode = query_power_mode()
    assert mode.name and mode.id >= 0


@pytest.mark.skipif(shutil.which("jetson_clocks") is None, reason="jetson_clocks ships with JetPack; not here")
def test_jetson_clocks_show_on_a_jetson():
    try:
        out = jetson_clocks("show")
    except EdgeirstError as e:  # needs root on most JetPacks
        pytest.skip(str(e))
    assert "GPU" in out or "CPU" in out


def test_jetson_clocks_rejects_unknown_action():
    with pytest.raises(EdgeirstError, match="must be one of"):
        jetson_clocks("turbo")


# -- edgeirst.toml ------------------------------------------------------------------------------


def _config() -> tomlcfg.LaunchConfig:
    cfg = tomlcfg.LaunchConfig()
    cfg.model.precision, cfg.model.onnx_int8, cfg.model.calibration_cache = "int8", "model.int8.onnx", "calibration.cache"
    cfg.source.uri = 'rtsp://cam/stream?a=1&b="q" # not a comment'
    cfg.run = RunConfig(threshold=0.3, agc=(1.0, 99.5), tracker=TrackerConfig(m=2, n=4, gate=6.5))
    cfg.sinks = SinkOptions(jsonl="-", save="out.mp4")
    cfg.engine = BuildOptions(builder="trtexec", dla_core=0)
    cfg.power.mode = "MAXN_SUPER"
    return cfg


def test_toml_round_trip_agrees_with_tomllib():
    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python >= 3.11")
    text = config_text(_config(), "header line\nsecond")
    assert text == config_text(_config(), "header line\nsecond")  # deterministic
    assert text.startswith("# header line\n# second\n") and "m = 2" in text and "n = 4" in text
    assert tomlcfg.parse_toml_subset(text) == tomllib.loads(text)  # the Python 3.8-3.10 reader reads the same
    back = tomlcfg.from_dict(tomllib.loads(text))
    assert back == _config() and back.run.tracker == TrackerConfig(m=2, n=4, gate=6.5)


def test_toml_left_out_keys_take_their_types_defaults():
    cfg = tomlcfg.from_dict(tomlcfg.parse_toml_subset('[run]\nthreshold = 0\n[sinks]\nsave = ""\n'))
    assert cfg.run == RunConfig(threshold=0.0) and cfg.run.tracker == TrackerConfig()
    assert cfg.sinks.jsonl == "-" and cfg.sinks.save is None and cfg.engine == BuildOptions()


def test_toml_subset_reader_handles_comments_quotes_and_arrays():
    data = tomlcfg.parse_toml_subset('# c\n[model]\ninput_size = [ 512, 640 ] # trailing\nonnx = \'m.onnx\'\n'
                                     'threshold = 0.25\n[source]\nuri = "a # b \\" c"\n')
    assert data == {"model": {"input_size": [512, 640], "onnx": "m.onnx", "threshold": 0.25},
                    "source": {"uri": 'a # b " c'}}


@pytest.mark.parametrize("text, match", [
    ("[model]\nprecision = \"int4\"\n", "precision must be one of"),
    ("[run]\nthreshold = \"high\"\n", "threshold must be a float"),
    ("[run]\nthreshold = 1.5\n", r"\[run\] threshold must be a number in \[0, 1\]"),
    ("[run]\nagc = [50, 10]\n", "agc must be two percentiles"),
    ("[tracker]\nm = 6\n", r"\[tracker\] tracker confirmation M/N needs integers 1 <= M <= N, got 6/5"),
    ("[tracker]\nconfirm = \"3/5\"\n", "unknown key 'confirm'"),
    ("[tracker]\ngate = 0\n", "gate must be a positive"),
    ("[modle]\n", "unknown table"),
    ("[model]\nonx = \"m.onnx\"\n", "unknown key 'onx'"),
    ("[model]\ninput_size = [0, 640]\n", "input_size"),
    ("[engine]\nbuilder = \"tensorflow\"\n", "builder must be one of"),
    ("[engine]\nworkspace_mb = true\n", "workspace_mb must be a int"),
])
def test_toml_user_errors(text, match):
    with pytest.raises(EdgeirstError, match=match):
        tomlcfg.from_dict(tomlcfg.parse_toml_subset(text))


def test_load_config_names_the_file(tmp_path):
    with pytest.raises(EdgeirstError, match="cannot read .*missing.toml"):
        tomlcfg.load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\n")
    with pytest.raises(EdgeirstError, match="bad.toml"):
        tomlcfg.load_config(bad)


# -- the launcher's choice of engine input --------------------------------------------------------


def test_engine_plan_picks_the_int8_form_per_tensorrt_version(tmp_path):
    cfg = _config()
    onnx, opts = engine_plan(cfg, tmp_path, "10.3.0.30")
    assert onnx.name == "model.int8.onnx" and opts.int8 and opts.calibration_cache is None
    onnx, opts = engine_plan(cfg, tmp_path, "8.5.2.2")
    assert onnx.name == "model.onnx" and opts.calibration_cache.endswith("calibration.cache")
    assert opts.max_hw == (1088, 1920) and opts.dla_core == 0 and opts.builder == "trtexec"
    cfg.model.calibration_cache = ""
    with pytest.raises(EdgeirstError, match="no INT8 form for TensorRT 8.5"):
        engine_plan(cfg, tmp_path, "8.5.2.2")
    cfg.model.precision = "fp16"
    onnx, opts = engine_plan(cfg, tmp_path, "8.5.2.2")
    assert onnx.name == "model.onnx" and opts.fp16 and not opts.int8


@pytest.mark.trt
def test_launcher_builds_an_engine_where_tensorrt_runs(tmp_path):
    from edgeirst.runtime.backends import tensorrt_available

    if not tensorrt_available():
        pytest.skip("TensorRT with pycuda/cuda-python is not installed here (no GPU on this machine)")
    from edgeirst.jetson.launch import prepare_model
    from edgeirst.weights import default_model

    shutil.copyfile(default_model(), tmp_path / "model.onnx")
    cfg = tomlcfg.LaunchConfig()
    cfg.model.input_size = [256, 256]
    cfg.engine = BuildOptions(cache_dir=str(tmp_path / "cache"))
    engine, backend = prepare_model(cfg, tmp_path)
    assert backend == "tensorrt" and engine.suffix == ".engine" and engine.is_file()
    assert prepare_model(cfg, tmp_path)[0] == engine  # cached per device and TensorRT version


def test_jetson_modules_import_neither_torch_nor_tensorrt():
    import subprocess
    import sys

    code = ("import sys\n"
            "import edgeirst.jetson.bundle, edgeirst.jetson.check, edgeirst.jetson.config, edgeirst.jetson.detect\n"
            "import edgeirst.jetson.launch, edgeirst.jetson.power, edgeirst.jetson.preflight, edgeirst.jetson.profiles\n"
            "import edgeirst.jetson.remote, edgeirst.jetson.tegrastats, edgeirst.jetson.templates, edgeirst.jetson.wheel\n"
            "import edgeirst.cli.deploy\n"
            "print(sorted(m for m in ('torch', 'tensorrt', 'onnx') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
