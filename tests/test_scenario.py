"""Scenario loading and validation (twin/scenario.py).

The shipped scenarios load with hand-checked derived values; every bad-scenario case
changes one thing in the valid quickstart file and checks that exactly the expected
problem is reported: key path, bad value (as written in TOML) and what was expected.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from twin.scenario import Outputs, ScenarioError, load_scenario

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "scenarios" / "quickstart.toml"
BASE = REPO / "tests" / "data" / "base_scenario.toml"
M100 = REPO / "scenarios" / "m100_day.toml"
UTC = timezone.utc


# quickstart.toml uses the climate model; tests of the diurnal keys switch to it first
DIURNAL = ('model = "climate"\nsite = "DE"',
           'model = "diurnal"\ndry_bulb_mean_c = 19.5\ndry_bulb_range_k = 10.0\n'
           'wet_bulb_mean_c = 15.3\nwet_bulb_range_k = 5.0')


# quickstart.toml uses dlc_warm_water; tests of paper_eq4 keys switch to it first
EQ4 = ('model = "dlc_warm_water"', 'model = "paper_eq4"\nchiller_cop = 5.5')


def eq4(old: str, new: str) -> tuple[str, str]:
    """One edit that switches quickstart to paper_eq4 and then applies ``old -> new``."""
    return EQ4[0], EQ4[1].replace(old, new) if old and old in EQ4[1] else EQ4[1] + "\n" + new


def variant(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    """Write tests/data/base_scenario.toml with each ``(old, new)`` edit applied once (new="" deletes).

    Fails the test if ``old`` is not in the file, so an edit can never silently do nothing.
    """
    text = BASE.read_text(encoding="utf-8")
    for old, new in edits:
        assert text.count(old) == 1, f"edit target {old!r} must occur exactly once in base_scenario.toml"
        text = text.replace(old, new)
    path = tmp_path / "variant.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    exc = info.value
    # every line of the message names the file first
    lines = str(exc).splitlines()
    assert len(lines) == len(exc.problems)
    for line, problem in zip(lines, exc.problems):
        assert line == f"{path}: {problem}"
    return exc.problems


# ---------------------------------------------------------------------------------------
# The shipped scenarios


def test_quickstart_loads_with_hand_checked_values():
    sc = load_scenario(QUICKSTART)
    assert sc.name == "quickstart"
    assert sc.facility.nodes == 120
    assert sc.facility.gpus_per_node == 8
    assert sc.facility.gpu_model == "H100-SXM"
    # gpu_power_cap_w is not in the file, so it defaults to the H100-SXM max limit (TDP) 700 W
    assert "gpu_power_cap_w" not in QUICKSTART.read_text(encoding="utf-8")
    assert sc.facility.gpu_power_cap_w == 700.0
    # design IT power = 120 x (8 x 700 W + 2800 W) = 120 x 8400 W = 1 008 000 W, exact in floats
    assert sc.facility.design_it_power_w == 1_008_000.0
    # 24 h at 1 s = 86 400 ticks
    assert sc.duration_s == 86_400.0
    assert sc.n_ticks == 86_400
    assert sc.start == datetime(2025, 1, 15, tzinfo=UTC)
    assert (sc.heat.model, sc.battery.model, sc.frequency.source) == ("district_heating", "lfp", "synthetic")
    assert sc.start.utcoffset() == timedelta(0)
    assert sc.seed == 42
    # written in the file: overview_png is not, so it takes its default (True)
    assert sc.outputs == Outputs(per_host_series=False, overview_png=True)
    assert sc.source_path == str(QUICKSTART)
    assert sc.sha256 == hashlib.sha256(QUICKSTART.read_bytes()).hexdigest()


def test_m100_day_loads_with_hand_checked_values():
    sc = load_scenario(M100)
    assert sc.name == "m100_day"
    assert sc.facility.nodes == 980
    assert sc.facility.gpus_per_node == 4
    assert sc.facility.gpu_model == "V100-SXM2-16GB"
    # default cap: the V100 SXM2 max limit, 300 W
    assert sc.facility.gpu_power_cap_w == 300.0
    # design IT power = 980 x (4 x 300 W + 650 W) = 980 x 1850 W = 1 813 000 W
    assert sc.facility.design_it_power_w == 1_813_000.0
    assert sc.n_ticks == 86_400
    assert sc.start == datetime(2025, 7, 15, tzinfo=UTC)
    assert (sc.heat.model, sc.battery.model, sc.frequency.source) == ("none", "none", "none")
    assert sc.start.tzinfo is not None and sc.start.utcoffset() == timedelta(0)
    assert sc.grid.country == "IT"
    assert sc.workload.offered_load == 0.4


def test_cooling_defaults_are_filled_in(tmp_path):
    sc = load_scenario(variant(tmp_path, (EQ4[0], 'model = "paper_eq4"')))
    p = sc.cooling.params
    assert sc.cooling.model == "paper_eq4"
    assert p["chiller_cop"] == 5.5
    assert p["pump_min_flow_fraction"] == 0.20
    assert p["fan_min_speed_fraction"] == 0.15
    assert p["pump_exponent"] == 3.0
    assert p["fan_exponent"] == 3.0
    # calibrated to PUE 1.20 at the Marconi100 design point (cooling_plant.calibrate_paper_eq4)
    assert (p["pump_design_fraction"], p["fan_design_fraction"], p["misc_fraction"]) == (0.05, 0.075, 0.075)
    # only the selected model's keys are kept
    assert "supply_c" not in p


def test_keys_of_another_cooling_model_are_rejected(tmp_path):
    problems = problems_of(variant(tmp_path, ("[cooling]", "[cooling]\nchw_supply_c = 8.0")))
    assert problems == ["cooling.chw_supply_c: only used when cooling.model is 'air_chiller' "
                        "(it is 'dlc_warm_water'); remove it"]
    sc = load_scenario(variant(tmp_path, ('model = "dlc_warm_water"', 'model = "dlc_warm_water"\nsupply_c = 40.0')))
    assert sc.cooling.params["supply_c"] == 40.0


@pytest.mark.parametrize("start", ["2025-07-15T02:00:00+02:00", '"2025-07-15T02:00:00+02:00"'],
                         ids=["toml-datetime", "string"])
def test_non_utc_offset_is_converted_to_utc(tmp_path, start):
    sc = load_scenario(variant(tmp_path, ("start = 2025-07-15T00:00:00Z", f"start = {start}")))
    # 02:00 at +02:00 is 00:00 UTC
    assert sc.start == datetime(2025, 7, 15, 0, 0, tzinfo=UTC)
    assert sc.start.utcoffset() == timedelta(0)
    assert (sc.start.year, sc.start.month, sc.start.day, sc.start.hour) == (2025, 7, 15, 0)


def test_tenth_of_a_second_tick_is_valid(tmp_path):
    sc = load_scenario(variant(tmp_path, ("base_tick_s = 1.0", "base_tick_s = 0.1")))
    assert sc.base_tick_s == 0.1
    # 24 h / 0.1 s = 864 000 ticks
    assert sc.n_ticks == 864_000


def test_outputs_table_may_be_omitted(tmp_path):
    sc = load_scenario(variant(tmp_path, ("[outputs]\nper_host_series = false\n", "")))
    assert sc.outputs == Outputs(per_host_series=False, overview_png=True)


def test_explicit_cap_at_range_edge_is_kept(tmp_path):
    # 200 W is the H100-SXM minimum limit: inside the range, inclusive
    sc = load_scenario(variant(tmp_path, ('gpu_model = "H100-SXM"', 'gpu_model = "H100-SXM"\ngpu_power_cap_w = 200')))
    assert sc.facility.gpu_power_cap_w == 200.0
    # design IT power = 120 x (8 x 200 W + 2800 W) = 528 000 W
    assert sc.facility.design_it_power_w == 528_000.0


def test_integer_for_float_key_is_accepted(tmp_path):
    sc = load_scenario(variant(tmp_path, ("duration_h = 24.0", "duration_h = 2")))
    assert sc.duration_h == 2.0 and isinstance(sc.duration_h, float)
    assert sc.n_ticks == 7200


def test_wet_bulb_boundary_is_valid(tmp_path):
    # dry-bulb 19.5 +- 5 K, wet-bulb range 5 K (+- 2.5 K): the cycles touch when the mean gap is
    # |10 - 5| / 2 = 2.5 K, i.e. wet-bulb mean 17.0 degC is the highest valid value
    sc = load_scenario(variant(tmp_path, DIURNAL, ("wet_bulb_mean_c = 15.3", "wet_bulb_mean_c = 17.0")))
    assert sc.weather.wet_bulb_mean_c == 17.0
    problems = problems_of(variant(tmp_path, DIURNAL, ("wet_bulb_mean_c = 15.3", "wet_bulb_mean_c = 17.1")))
    assert len(problems) == 1 and problems[0].startswith("weather.wet_bulb_mean_c = 17.1: expected")


# ---------------------------------------------------------------------------------------
# Bad scenarios: one edit each, exactly one problem, with key path, bad value and expectation

_CAP = 'gpu_model = "H100-SXM"'
FREQ_TABLE = '[frequency]\nsource = "synthetic"\nffr_dips = 6\n'
HEAT_TABLE = ('[heat]\nmodel = "district_heating"\nheat_pump_capacity_kw = 500.0\nannual_demand_mwh = 1500.0\n'
              'tank_volume_m3 = 100.0\ntank_ua_w_per_k = 50.0\nmeter_permanent_flow_m3_per_h = 10.0\n')
BAD = [
    ("string-for-int", ("nodes = 120", 'nodes = "120"'),
     ["facility.nodes = '120': expected an integer >= 1 and <= 1e+07"]),
    ("float-for-int", ("nodes = 120", "nodes = 120.0"),
     ["facility.nodes = 120.0: expected an integer >= 1"]),
    ("bool-for-number", eq4("chiller_cop = 5.5", "chiller_cop = true"),
     ["cooling.chiller_cop = true: expected a number >= 0.5 and <= 20"]),
    ("nan-for-number", eq4("chiller_cop = 5.5", "chiller_cop = nan"),
     ["cooling.chiller_cop = nan: expected a number >= 0.5 and <= 20"]),
    ("negative-host-idle", ("host_idle_w = 1000.0", "host_idle_w = -5.0"),
     ["facility.host_idle_w = -5.0: expected a number >= 0 [W]"]),
    ("offered-load-zero", ("offered_load = 0.7", "offered_load = 0"),
     ["workload.offered_load = 0: expected a number > 0 and <= 2"]),
    ("chiller-cop-zero", eq4("chiller_cop = 5.5", "chiller_cop = 0"),
     ["cooling.chiller_cop = 0: expected a number >= 0.5 and <= 20"]),
    ("unknown-top-level-key", ("seed = 42", "seed = 42\nsede = 1"),
     ["sede: unknown key; did you mean 'seed'?"]),
    ("unknown-section-key", ("gpus_per_node = 8", "gpus_per_node = 8\ngpu_per_node = 8"),
     ["facility.gpu_per_node: unknown key; did you mean 'gpus_per_node'?"]),
    ("unknown-section-name", ("[outputs]", "[output]"),
     ["output: unknown key; did you mean 'outputs'?"]),
    ("unknown-name-lists-sections", ("[outputs]", "[zzz]"),
     ["zzz: unknown key; valid keys: ", "facility", "outputs", "seed"]),
    ("missing-required-key", ("nodes = 120\n", ""),
     ["facility.nodes: missing; expected an integer >= 1", "(Number of compute nodes (hosts))"]),
    ("missing-required-table", ('[grid]\ncountry = "DE"\ncarbon_source = "synthetic"\n', ""),
     ["[grid]: missing table; expected one with keys country, carbon_source"]),
    ("bad-datetime-string", ("start = 2025-07-15T00:00:00Z", 'start = "yesterday"'),
     ["start = 'yesterday': expected a UTC date-time such as 2025-07-15T00:00:00Z"]),
    ("impossible-date", ("start = 2025-07-15T00:00:00Z", 'start = "2025-13-40T00:00:00Z"'),
     ["start = '2025-13-40T00:00:00Z': expected a UTC date-time"]),
    ("date-without-time", ("start = 2025-07-15T00:00:00Z", "start = 2025-07-15"),
     ["start = 2025-07-15: expected a UTC date-time such as 2025-07-15T00:00:00Z"]),
    ("naive-datetime", ("start = 2025-07-15T00:00:00Z", "start = 2025-07-15T00:00:00"),
     ["start = 2025-07-15T00:00:00: has no UTC offset; expected a UTC date-time"]),
    ("negative-duration", ("duration_h = 24.0", "duration_h = -1.0"),
     ["duration_h = -1.0: expected a number > 0 and <= 17568 [h]"]),
    ("tick-does-not-divide-hour", ("base_tick_s = 1.0", "base_tick_s = 7"),
     ["base_tick_s = 7.0: expected a tick that divides one hour evenly"]),
    # 0.001 h = 3.6 s, not a whole number of 5 s ticks
    ("duration-not-whole-ticks", ("duration_h = 24.0\nbase_tick_s = 1.0", "duration_h = 0.001\nbase_tick_s = 5.0"),
     ["duration_h = 0.001: expected a whole number of base ticks (5 s) [h]"]),
    ("cap-above-range", (_CAP, _CAP + "\ngpu_power_cap_w = 800.0"),
     ["facility.gpu_power_cap_w = 800.0: expected a number within the H100-SXM power-limit range 200-700 [W]"]),
    ("cap-below-range", (_CAP, _CAP + "\ngpu_power_cap_w = 199.9"),
     ["facility.gpu_power_cap_w = 199.9: expected", "range 200-700 [W]"]),
    ("host-busy-below-idle", ("host_busy_w = 2800.0", "host_busy_w = 900.0"),
     ["facility.host_busy_w = 900.0: expected a number >= facility.host_idle_w (1000) [W]"]),
    ("wet-bulb-above-dry-bulb", (DIURNAL[0], DIURNAL[1].replace("wet_bulb_mean_c = 15.3", "wet_bulb_mean_c = 25.0")),
     ["weather.wet_bulb_mean_c = 25.0: expected the wet-bulb cycle to stay at or below the dry-bulb cycle"]),
    ("free-cooling-thresholds-crossed", eq4("", "free_cooling_full_at_wet_bulb_c = 30.0"),
     ["cooling.free_cooling_full_at_wet_bulb_c = 30.0: expected a number below "
      "cooling.free_cooling_zero_at_dry_bulb_c (25) [degC]"]),
    ("bad-choice-with-suggestion", ('gpu_model = "H100-SXM"', 'gpu_model = "H100-SMX"'),
     ["facility.gpu_model = 'H100-SMX': expected one of ", "'H100-SXM'", "(did you mean 'H100-SXM'?)"]),
    ("climate-with-diurnal-key", ('site = "DE"', 'site = "DE"\ndry_bulb_mean_c = 20.0'),
     ["weather.dry_bulb_mean_c: only used when weather.model is 'diurnal' (it is 'climate'); remove it"]),
    ("climate-without-site", ('site = "DE"\n', ""),
     ["weather.site: missing; expected one of 'SE', 'CH', 'FR', 'IT', 'DE', 'PL'"]),
    ("constant-carbon-without-value",
     ('carbon_source = "synthetic"', 'carbon_source = "constant"\nconstant_carbon_free_fraction = 0.5'),
     ["grid.constant_intensity_g_per_kwh: missing; expected a number >= 0 and <= 2000 [gCO2eq/kWh]"]),
    ("constant-value-with-synthetic-carbon",
     ('carbon_source = "synthetic"', 'carbon_source = "synthetic"\nconstant_intensity_g_per_kwh = 100.0'),
     ["grid.constant_intensity_g_per_kwh: only used when grid.carbon_source is 'constant' (it is 'synthetic'); "
      "remove it"]),
    ("battery-initial-soc-outside-window", ('model = "lfp"', 'model = "lfp"\ninitial_soc = 0.95'),
     ["battery.initial_soc = 0.95: expected a number within the SoC window 0.1-0.9 [-]"]),
    ("battery-key-without-model", ('model = "lfp"\ncapacity_kwh = 250.0\nmax_charge_kw = 250.0\nmax_discharge_kw = 500.0\n'
                                   'ffr_reserve_kw = 200.0\nrecharge_kw = 50.0', 'model = "none"\ncapacity_kwh = 250.0'),
     ["battery.capacity_kwh: only used when battery.model is 'lfp' (it is 'none'); remove it"]),
    ("heat-needs-dlc", [('model = "dlc_warm_water"', 'model = "air_chiller"'), ("[outputs]", HEAT_TABLE + "[outputs]")],
     ["heat.model = 'district_heating': needs cooling.model = 'dlc_warm_water'"]),
    ("heat-setpoint-out-of-range", ("[outputs]", HEAT_TABLE + "supply_setpoint_c = 95.0\n[outputs]"),
     ["heat.supply_setpoint_c = 95.0: expected a number >= 70 and <= 90 [degC]"]),
    ("ffr-level-not-nordic", ("[outputs]", FREQ_TABLE + "ffr_level_hz = 49.65\n[outputs]"),
     ["frequency.ffr_level_hz = 49.65: expected one of 49.7, 49.6, 49.5"]),
    ("too-many-dips", ("[outputs]", FREQ_TABLE.replace("ffr_dips = 6", "ffr_dips = 97") + "[outputs]"),
     ["frequency.ffr_dips = 97: expected at most 96 in 24 h (FFR re-arms 15 min after an activation)"]),
    ("log-tick-does-not-divide-base-tick", ("[outputs]", FREQ_TABLE + "log_tick_s = 0.3\n[outputs]"),
     ["frequency.log_tick_s = 0.3: expected a tick that divides base_tick_s (1 s) evenly [s]"]),
    ("class-shares-do-not-sum-to-1", ('offered_load = 0.7', 'offered_load = 0.7\nbursty_share = 0.5'),
     ["workload.bursty_share = 0.5: expected compute_bound_share + memory_bound_share + bursty_share = 1"]),
    ("bad-country", ('country = "DE"', 'country = "Germany"'),
     ["grid.country = 'Germany': expected one of 'SE', 'CH', 'FR', 'IT', 'DE', 'PL'"]),
]


@pytest.mark.parametrize("edit, expected", [(e, x) for _, e, x in BAD], ids=[i for i, _, _ in BAD])
def test_bad_scenario_reports_exactly_one_problem(tmp_path, edit, expected):
    problems = problems_of(variant(tmp_path, *(edit if isinstance(edit, list) else [edit])))
    assert len(problems) == 1, problems
    # the first part leads the line: key path, bad value as written in TOML, expectation
    assert problems[0].startswith(expected[0]), problems[0]
    for part in expected[1:]:
        assert part in problems[0], (part, problems[0])


def test_section_given_as_a_value_not_a_table(tmp_path):
    path = variant(tmp_path, ("[outputs]\nper_host_series = false\n", ""),
                   ("seed = 42\n", "seed = 42\noutputs = 3\n"))
    assert problems_of(path) == ["outputs = 3: expected a table ([outputs])"]


def test_bad_choice_without_a_close_match_has_no_suggestion(tmp_path):
    problems = problems_of(variant(tmp_path, ('gpu_model = "H100-SXM"', 'gpu_model = "TPUv5"')))
    assert len(problems) == 1
    assert problems[0].startswith("facility.gpu_model = 'TPUv5': expected one of ")
    assert "did you mean" not in problems[0]


def test_invalid_toml_names_the_line(tmp_path):
    path = variant(tmp_path, ("seed = 42", "seed = = 42"))
    line_no = path.read_text(encoding="utf-8").splitlines().index("seed = = 42") + 1
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith("not valid TOML: ")
    assert f"line {line_no}," in problems[0]


def test_missing_file(tmp_path):
    path = tmp_path / "no_such.toml"
    problems = problems_of(path)
    assert problems == ["cannot read file: No such file or directory"]


def test_directory_is_not_readable_as_a_file(tmp_path):
    problems = problems_of(tmp_path)
    assert len(problems) == 1 and problems[0].startswith("cannot read file: ")


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(BASE.read_bytes().replace(b"Frankfurt January", b"Frankfurt Januar \xe9t\xe9"))
    problems = problems_of(path)
    assert len(problems) == 1 and problems[0].startswith("not UTF-8 text: ")


def test_several_problems_are_reported_together(tmp_path):
    path = variant(
        tmp_path,
        ("nodes = 120", 'nodes = "many"'),
        ('gpu_model = "H100-SXM"', 'gpu_model = "H100-SMX"'),
        eq4("chiller_cop = 5.5", "chiller_cop = 0"),
        ('[grid]\ncountry = "DE"\ncarbon_source = "synthetic"\n', ""),
        ("seed = 42", "seed = 42\nsede = 1"),
    )
    problems = problems_of(path)
    assert len(problems) == 5, problems
    expected_starts = [
        "sede: unknown key; did you mean 'seed'?",
        "facility.nodes = 'many': expected an integer",
        "facility.gpu_model = 'H100-SMX': expected one of",
        "cooling.chiller_cop = 0: expected a number >= 0.5",
        "[grid]: missing table",
    ]
    for start in expected_starts:
        assert sum(p.startswith(start) for p in problems) == 1, (start, problems)


def test_host_busy_equal_to_idle_is_the_edge(tmp_path):
    sc = load_scenario(variant(tmp_path, ("host_busy_w = 2800.0", "host_busy_w = 1000.0")))
    assert sc.facility.host_busy_w == sc.facility.host_idle_w == 1000.0
    problems = problems_of(variant(tmp_path, ("host_busy_w = 2800.0", "host_busy_w = 999.9")))
    assert problems == ["facility.host_busy_w = 999.9: expected a number >= facility.host_idle_w (1000) [W]"]
