"""The tegrastats parser on real lines from five Jetson generations, and the sampler.

Each line was printed by tegrastats on a device and published; the source is named beside it.
"""

from __future__ import annotations

import sys
import textwrap
import time

import pytest

from edgeirst.errors import EdgeirstError
from edgeirst.jetson.tegrastats import TegrastatsSampler, find_tegrastats, parse_line

# Jetson Nano, JetPack 4.6.1 (L4T 32): waggle-sensor/jetson-exporter tegrastats_test.go
# (TestParseTegraStatsXavierNanoJetPack461)
NANO = ("RAM 1923/3964MB (lfb 2x2MB) SWAP 191/1982MB (cached 6MB) IRAM 0/252kB(lfb 252kB) "
        "CPU [5%@1224,4%@1224,3%@1224,6%@1224] EMC_FREQ 0%@1600 GR3D_FREQ 0%@76 APE 25 PLL@37C CPU@40C PMIC@50C "
        "GPU@40C AO@45C thermal@40C POM_5V_IN 1750/1628 POM_5V_GPU 0/0 POM_5V_CPU 366/406")
# Jetson TX2 (L4T 32, 2019): FindHao/tx-utils issue #3 "The code does not accommodate with the latest tegrastats"
TX2 = ("RAM 2020/7852MB (lfb 1164x4MB) CPU [9%@345,21%@345,25%@345,3%@345,1%@345,1%@345] EMC_FREQ 0% GR3D_FREQ 0% "
       "PLL@42.5C MCPU@42.5C PMIC@100C Tboard@40C GPU@41C BCPU@42.5C thermal@41.9C Tdiode@41.25C VDD_SYS_GPU 153/158 "
       "VDD_SYS_SOC 536/547 VDD_4V0_WIFI 633/527 VDD_IN 3140/3208 VDD_SYS_CPU 536/590 VDD_SYS_DDR 557/601")
# Jetson AGX Xavier, JetPack 4.2: martinkersner/gtop pull request #7 "Added AGX/Xavier support" (2019-06-17)
AGX_XAVIER = ("RAM 14700/15692MB (lfb 3x2MB) SWAP 898/8192MB (cached 23MB) CPU [0%@1190,0%@1190,0%@1190,0%@1190,"
              "0%@1190,0%@1190,0%@1190,0%@1190] EMC_FREQ 0% GR3D_FREQ 0% AO@30C GPU@30.5C Tboard@31C Tdiode@32C "
              "AUX@30.5C CPU@31.5C thermal@30.8C PMIC@100C GPU 463/463 CPU 618/618 SOC 2936/2936 CV 0/0 VDDRQ 309/309 "
              "SYS5V 3306/3306")
# Jetson Xavier NX, L4T 32 and JetPack 5.1.2: waggle-sensor/jetson-exporter tegrastats_test.go
# (TestParseTegraStatsXavierNXJetPack411 and ...JetPack512)
XAVIER_NX_L4T32 = ("RAM 5246/7771MB (lfb 7x4MB) SWAP 983/20269MB (cached 280MB) CPU [47%@1420,23%@1420,32%@1420,"
                   "22%@1420,31%@1420,96%@1420] EMC_FREQ 2%@1600 GR3D_FREQ 0%@1109 APE 150 MTS fg 1% bg 9% AO@29C "
                   "GPU@31.5C PMIC@100C AUX@30C CPU@33.5C thermal@31.35C VDD_IN 6140/5510 VDD_CPU_GPU_CV 2706/2119 "
                   "VDD_SOC 1074/1051")
XAVIER_NX_JP5 = ("07-09-2024 13:31:31 RAM 3168/6851MB (lfb 2x4MB) SWAP 161/3426MB (cached 0MB) CPU [23%@1397,"
                 "17%@1192,16%@1190,13%@1190,23%@1190,10%@1190] EMC_FREQ 2%@204 GR3D_FREQ 0%@[114] VIC_FREQ 115 APE 150 "
                 "AUX@45C CPU@46.5C thermal@45.6C AO@45C GPU@45.5C PMIC@50C VDD_IN 2763mW/2846mW "
                 "VDD_CPU_GPU_CV 650mW/670mW VDD_SOC 650mW/711mW")
# Jetson AGX Orin 64GB, JetPack 6: GDWR/jetson_exporter issue #14 "GPU utilization percentage isn't available"
AGX_ORIN = ("04-11-2025 10:36:27 RAM 4321/62801MB (lfb 1759x4MB) SWAP 19/31400MB (cached 0MB) CPU [0%@729,0%@729,"
            "0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729] EMC_FREQ 0%@2133 GR3D_FREQ 0%@[0,0] "
            "VIC_FREQ 729 APE 174 CV0@-256C CPU@44.562C Tboard@32C SOC2@40.093C Tdiode@33C SOC0@41.093C CV1@-256C "
            "GPU@-256C tj@44.343C SOC1@41.25C CV2@-256C VDD_GPU_SOC 2340mW/2340mW VDD_CPU_CV 390mW/390mW "
            "VIN_SYS_5V0 4025mW/4025mW NC 0mW/0mW VDDQ_VDD2_1V8AO 301mW/301mW NC 0mW/0mW")
# Jetson Orin Nano Super, JetPack 6.2 (L4T 36.4.3): lkk688/edgeAI docs/curriculum/02a_linux_basics.md
ORIN_NANO_SUPER = ("07-14-2025 10:29:36 RAM 2147/7620MB (lfb 2x4MB) SWAP 1476/3810MB (cached 1MB) CPU [0%@729,0%@729,"
                   "0%@729,0%@729,0%@729,0%@729] GR3D_FREQ 0% cpu@47.687C soc2@46.718C soc0@47.468C gpu@48.625C "
                   "tj@48.625C soc1@48.25C VDD_IN 4556mW/4556mW VDD_CPU_GPU_CV 483mW/483mW VDD_SOC 1451mW/1451mW")


def test_nano_l4t32():
    s = parse_line(NANO)
    assert (s.ram_used_mb, s.ram_total_mb, s.swap_used_mb, s.swap_total_mb, s.swap_cached_mb) == (1923, 3964, 191, 1982, 6)
    assert s.cpu == [(5, 1224), (4, 1224), (3, 1224), (6, 1224)] and s.cpu_load_mean == 4.5
    assert (s.emc_load, s.emc_mhz, s.gpu_load, s.gpu_mhz) == (0, 1600, 0, [76])
    assert s.temperatures == {"PLL": 37.0, "CPU": 40.0, "PMIC": 50.0, "GPU": 40.0, "AO": 45.0, "thermal": 40.0}
    assert "IRAM" not in s.rails and "RAM" not in s.rails and "SWAP" not in s.rails  # kB/MB pairs are not rails
    assert s.rails["POM_5V_CPU"].current_mw == 366 and s.rails["POM_5V_CPU"].average_mw == 406
    assert (s.power_source, s.power_mw) == ("POM_5V_IN", 1750)
    assert s.time is None


def test_tx2_l4t32():
    s = parse_line(TX2)
    assert s.swap_used_mb is None and len(s.cpu) == 6 and s.cpu[1] == (21, 345)
    assert (s.emc_load, s.emc_mhz, s.gpu_load, s.gpu_mhz) == (0, None, 0, [])
    assert s.temperatures["Tdiode"] == 41.25 and s.temperatures["BCPU"] == 42.5
    assert list(s.rails) == ["VDD_SYS_GPU", "VDD_SYS_SOC", "VDD_4V0_WIFI", "VDD_IN", "VDD_SYS_CPU", "VDD_SYS_DDR"]
    assert (s.power_source, s.power_mw) == ("VDD_IN", 3140)


def test_agx_xavier_rails_without_vdd_prefix():
    s = parse_line(AGX_XAVIER)
    assert len(s.cpu) == 8 and s.temperatures["CPU"] == 31.5  # CPU@ temperature, CPU [..] loads, CPU rail: all three
    assert s.rails["CPU"].current_mw == 618 and s.rails["SYS5V"].current_mw == 3306
    assert s.power_source == "sum of rails" and s.power_mw == 463 + 618 + 2936 + 0 + 309 + 3306


def test_xavier_nx_before_and_after_milliwatt_units():
    old, new = parse_line(XAVIER_NX_L4T32), parse_line(XAVIER_NX_JP5)
    assert old.rails["VDD_CPU_GPU_CV"].current_mw == 2706 and old.power_mw == 6140 and old.gpu_mhz == [1109]
    assert new.time == "07-09-2024 13:31:31" and new.gpu_mhz == [114] and new.emc_mhz == 204
    assert new.rails["VDD_SOC"].average_mw == 711 and new.power_mw == 2763 and new.power_source == "VDD_IN"
    assert "VIC_FREQ" not in new.rails and "APE" not in new.rails


def test_agx_orin_jetpack6():
    s = parse_line(AGX_ORIN)
    assert s.ram_total_mb == 62801 and len(s.cpu) == 12 and s.gpu_mhz == [0, 0]
    assert "GPU" not in s.temperatures and "CV0" not in s.temperatures  # -256C = sensor off
    assert s.temperatures["tj"] == 44.343
    assert "NC" not in s.rails and set(s.rails) == {"VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"}
    assert s.power_source == "sum of rails" and s.power_mw == 2340 + 390 + 4025 + 301


def test_orin_nano_super_jetpack62():
    s = parse_line(ORIN_NANO_SUPER)
    assert s.emc_load is None and s.gpu_load == 0 and s.gpu_mhz == []
    assert s.temperatures["tj"] == 48.625 and s.temperatures["soc2"] == 46.718
    assert (s.power_source, s.power_mw) == ("VDD_IN", 4556)
    d = s.to_dict()
    assert d["rails"]["VDD_CPU_GPU_CV"] == {"current_mw": 483, "average_mw": 483} and d["power_mw"] == 4556


@pytest.mark.parametrize("line", ["", "tegrastats: command not found", "Error: Run this as root"])
def test_non_tegrastats_lines(line):
    assert parse_line(line) is None


def test_offline_cpu_cores():
    s = parse_line("RAM 1224/15368MB (lfb 8x4MB) CPU [1%@729,0%@729,off,off] GR3D_FREQ 0% VDD_IN 4319mW/4319mW")
    assert s.cpu == [(1, 729), (0, 729), None, None] and s.cpu_load_mean == 0.5


def test_sampler_reads_lines_from_a_real_subprocess(tmp_path):
    """The sampler's process and thread handling, on a process that replays the published lines
    at tegrastats' cadence (the real binary is tested below where JetPack is installed)."""
    replay = tmp_path / "replay_tegrastats.py"
    replay.write_text(textwrap.dedent(f"""
        import sys, time
        assert sys.argv[1:3] == ["--interval", "50"], sys.argv
        lines = {[ORIN_NANO_SUPER, XAVIER_NX_JP5, "not a tegrastats line"]!r}
        for i in range(600):
            print(lines[i % 3], flush=True)
            time.sleep(0.05)
    """))
    with TegrastatsSampler(interval_ms=50, command=[sys.executable, str(replay)]) as power:
        deadline = time.monotonic() + 10
        while len(power.samples) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc = power._proc
    assert proc is not None and proc.poll() is not None  # stopped on exit
    samples = power.samples
    assert len(samples) >= 4 and power.ignored_lines >= 1
    watts = [s.power_mw / 1000 for s in samples]
    assert power.mean_watts() == pytest.approx(sum(watts) / len(watts))
    assert "fps per W" in power.report(12.0) and "VDD_IN" in power.report(12.0)


def test_sampler_errors():
    with pytest.raises(EdgeirstError, match="interval"):
        TegrastatsSampler(interval_ms=0, command="tegrastats")
    with pytest.raises(EdgeirstError, match="cannot start"):
        TegrastatsSampler(command="/nonexistent/tegrastats").start()


@pytest.mark.skipif(find_tegrastats() is None, reason="tegrastats ships with JetPack; not on this machine")
def test_real_tegrastats_on_a_jetson():
    with TegrastatsSampler(interval_ms=200) as power:
        time.sleep(1.5)
    assert power.samples and power.samples[-1].ram_total_mb > 0
