"""ENTSO-E A75 -> hourly carbon intensity (traces.entsoe) and ``gridtwin ci fetch``.

Offline: entsoe-py's own parser and its real client run against a hand-built A75
document (tests/data/a75_de_lu_2h.xml) served by a local, bounded HTTP server. One
test (marker ``remote_data``) calls the real API and skips without a token.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import urllib.parse
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from traces import entsoe as te
from twin import cli

REPO = Path(__file__).resolve().parents[1]
A75 = REPO / "tests" / "data" / "a75_de_lu_2h.xml"
TOKEN = "test-token-1234"

# Hand calculation for a75_de_lu_2h.xml with the AR5 factors gas 490, wind onshore 11
# gCO2eq/kWh (twin.physics.grid.LIFECYCLE_G_PER_KWH):
#   hour 00: gas PT15M 100, 200, 300, 400 -> mean 250 MW; wind PT60M 750 MW; total 1000
#            CI = (250*490 + 750*11) / 1000 = (122500 + 8250) / 1000 = 130.75; cff = 750/1000 = 0.75
#   hour 01: gas 400, 400, 400, 400 -> 400 MW; wind 600 MW; total 1000
#            CI = (400*490 + 600*11) / 1000 = (196000 + 6600) / 1000 = 202.6;  cff = 600/1000 = 0.60
EXPECTED_CI = [130.75, 202.6]
EXPECTED_CFF = [0.75, 0.60]
HOURS = pd.DatetimeIndex(["2025-01-01T00:00Z", "2025-01-01T01:00Z"])

# entsoe-py 0.8 calls DataFrame.sort_index(inplace=True), deprecated in pandas 3.1: theirs, not ours
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning:entsoe")


@pytest.fixture
def no_token(monkeypatch, tmp_path):
    """No token anywhere: env var unset, config dir empty."""
    monkeypatch.delenv(te.TOKEN_ENV, raising=False)
    monkeypatch.setenv(te.CONFIG_DIR_ENV, str(tmp_path / "config"))
    return tmp_path / "config" / "entsoe_token"


# ------------------------------------------------------------------ parser + conversion


def test_entsoe_parser_on_hand_built_a75_matches_hand_calculation():
    from entsoe.parsers import parse_generation

    gen = parse_generation(A75.read_text(encoding="utf-8"))
    # entsoe-py: one column per type, the metric level dropped (only "Actual Aggregated"),
    # PT15M and PT60M on one index (wind NaN at :15, :30, :45)
    assert sorted(gen.columns) == ["Fossil Gas", "Wind Onshore"]
    assert len(gen) == 8 and gen["Wind Onshore"].notna().sum() == 2
    ci = te.ci_from_generation(gen)
    assert list(ci.columns) == ["timestamp", "carbon_intensity_g_per_kwh", "carbon_free_fraction"]
    assert pd.DatetimeIndex(ci["timestamp"]).equals(HOURS)
    np.testing.assert_allclose(ci["carbon_intensity_g_per_kwh"], EXPECTED_CI, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ci["carbon_free_fraction"], EXPECTED_CFF, rtol=0, atol=1e-12)


def _frame(values: dict, index) -> pd.DataFrame:
    return pd.DataFrame(values, index=pd.DatetimeIndex(index))


def test_ci_from_generation_gap_naive_index_and_missing_policy():
    idx = ["2025-01-01T00:00Z", "2025-01-01T01:00Z", "2025-01-01T03:00Z"]
    with pytest.raises(ValueError, match=r"no generation reported in 1 hours.*first at 2025-01-01T02:00Z"):
        te.ci_from_generation(_frame({"Nuclear": [1.0, 1.0, 1.0]}, idx))
    with pytest.raises(ValueError, match="time-zone-aware"):
        te.ci_from_generation(pd.DataFrame({"Nuclear": [1.0]}, index=pd.DatetimeIndex(["2025-01-01"])))
    # a type silent in one hour while another reports: raise by default, 0 MW with "zero"
    gen = _frame({"Nuclear": [100.0, 100.0], "Fossil Gas": [100.0, np.nan]},
                 ["2025-01-01T00:00Z", "2025-01-01T01:00Z"])
    with pytest.raises(ValueError, match="Fossil Gas.*NaN"):
        te.ci_from_generation(gen)
    ci = te.ci_from_generation(gen, missing="zero")
    # (100*12 + 100*490)/200 = 251; hour 2 nuclear only: 12
    np.testing.assert_allclose(ci["carbon_intensity_g_per_kwh"], [251.0, 12.0])


# ------------------------------------------------------------------ token, arguments


def test_missing_token_error_says_how_to_get_one(no_token, monkeypatch):
    with pytest.raises(te.MissingTokenError) as exc:
        te.resolve_token()
    msg = str(exc.value)
    for part in ("ENTSOE_API_TOKEN", "https://transparency.entsoe.eu/", "transparency@entsoe.eu",
                 "Restful API access", str(no_token), "GRIDTWIN_CONFIG_DIR"):
        assert part in msg
    no_token.parent.mkdir(parents=True)
    no_token.write_text("\n", encoding="utf-8")
    with pytest.raises(te.MissingTokenError, match="is empty"):
        te.resolve_token()
    no_token.write_text("  from-file \n", encoding="utf-8")
    assert te.resolve_token() == "from-file"
    monkeypatch.setenv(te.TOKEN_ENV, "from-env")
    assert te.resolve_token() == "from-env"
    assert te.resolve_token("given") == "given"


def test_cache_path_and_argument_checks(tmp_path):
    assert te.cache_path("de", "2025-01-01", "2025-02-01", tmp_path) == tmp_path / "DE_2025-01-01_2025-02-01.parquet"
    assert te.cache_path("SE", "2025-01-01T06:00Z", "2025-01-02", tmp_path).name == \
        "SE_2025-01-01T0600Z_2025-01-02.parquet"
    assert te.default_cache_dir() == Path.home() / ".cache" / "gridtwin" / "entsoe"
    assert dict(te.COUNTRY_ZONES) == {"SE": "SE", "CH": "CH", "FR": "FR", "IT": "IT", "DE": "DE_LU", "PL": "PL"}
    with pytest.raises(ValueError, match=r"country='XX' is not supported; allowed: SE, CH, FR, IT, DE, PL"):
        te.cache_path("XX", "2025-01-01", "2025-01-02")
    with pytest.raises(ValueError, match="is not after start"):
        te.cache_path("DE", "2025-01-02", "2025-01-01")
    with pytest.raises(ValueError, match="not on the hour"):
        te.cache_path("DE", "2025-01-01T00:30Z", "2025-01-02")
    with pytest.raises(ValueError, match="retry_count=0"):
        te.fetch_generation("DE", "2025-01-01", "2025-01-02", token="t", retry_count=0)


@pytest.mark.parametrize(("args", "message"), [
    (["--country", "XX"], "country='XX' is not supported; allowed: SE, CH, FR, IT, DE, PL"),
    (["--country", "DE", "--end", "2024-12-01"], "is not after start"),
    (["--country", "DE", "--start", "2025-13-01"], "start='2025-13-01' is not a date or time"),
    (["--country", "DE"], "no ENTSO-E API token: ENTSOE_API_TOKEN is not set"),
])
def test_cli_usage_errors_exit_2(no_token, tmp_path, capsys, args, message):
    base = {"--start": "2025-01-01", "--end": "2025-02-01"}
    for k, v in zip(args[::2], args[1::2]):
        base[k] = v
    argv = ["ci", "fetch", "--cache-dir", str(tmp_path / "cache")] + [x for kv in base.items() for x in kv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("gridtwin ci fetch: ") and message in err
    assert not (tmp_path / "cache").exists()


# ------------------------------------------------------------------ local ENTSO-E server


@contextmanager
def local_entsoe(responses: list[tuple[int, str, bytes]]):
    """Serve ``responses`` (status, content type, body), one per request, then stop.

    Yields ``(url, requests)``; ``requests`` collects each request's query dict.
    Bounded: it handles at most ``len(responses)`` requests, each waited for <= 20 s.
    """
    seen: list[dict] = []
    queue = list(responses)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            url = urllib.parse.urlsplit(self.path)
            seen.append({"path": url.path, **dict(urllib.parse.parse_qsl(url.query))})
            status, ctype, body = queue.pop(0)
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    server.timeout = 20

    def serve():
        for _ in range(len(responses)):
            server.handle_request()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api", seen
    finally:
        thread.join(timeout=25 * len(responses))
        server.server_close()


def _env(url: str, tmp_path: Path, token: str | None = TOKEN) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in (te.TOKEN_ENV, "ENTSOE_API_KEY")}
    env.update({"ENTSOE_ENDPOINT_URL": url, te.CONFIG_DIR_ENV: str(tmp_path / "config"),
                "PYTHONPATH": str(REPO)})
    if token:
        env[te.TOKEN_ENV] = token
    return env


def _xml() -> tuple[int, str, bytes]:
    return 200, "text/xml", A75.read_bytes()


def test_real_client_end_to_end_against_local_server(tmp_path, no_token):
    # entsoe-py reads ENTSOE_ENDPOINT_URL once, at import: a fresh interpreter with it set.
    cache = tmp_path / "cache"
    script = (
        "from traces.entsoe import get_carbon_intensity\n"
        f"data, meta = get_carbon_intensity('DE', '2025-01-01T00:00Z', '2025-01-01T02:00Z', token={TOKEN!r}, "
        f"cache_dir={str(cache)!r}, retry_count=1, retry_delay_s=0, timeout_s=20)\n"
        "print(meta['cache_path'], meta['from_cache'])\n")
    with local_entsoe([_xml()]) as (url, seen):
        out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=_env(url, tmp_path, token=None),
                             capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    path = cache / "DE_2025-01-01_2025-01-01T0200Z.parquet"
    assert out.stdout.split() == [str(path), "False"]
    # the request entsoe-py built: A75 realised, DE-LU zone, UTC period, our token
    assert seen == [{"path": "/api", "documentType": "A75", "processType": "A16",
                     "in_Domain": "10Y1001A1001A82H", "securityToken": TOKEN,
                     "periodStart": "202501010000", "periodEnd": "202501010200"}]
    data, meta = te.read_ci_cache(path)
    assert pd.DatetimeIndex(data["timestamp"]).equals(HOURS)
    np.testing.assert_allclose(data["carbon_intensity_g_per_kwh"], EXPECTED_CI, rtol=0, atol=1e-9)
    np.testing.assert_allclose(data["carbon_free_fraction"], EXPECTED_CFF, rtol=0, atol=1e-12)
    assert {k: meta[k] for k in ("country", "zone", "eic", "start", "end", "hours", "missing")} == {
        "country": "DE", "zone": "DE_LU", "eic": "10Y1001A1001A82H", "start": "2025-01-01T00:00Z",
        "end": "2025-01-01T02:00Z", "hours": 2, "missing": "raise"}
    assert sorted(meta["generation_columns"]) == ["Fossil Gas", "Wind Onshore"]
    assert meta["source"].startswith("ENTSO-E Transparency Platform, A75")
    # a second call is served from the cache: no token, no network (entsoe URL unset here)
    again, meta2 = te.get_carbon_intensity("DE", "2025-01-01T00:00Z", "2025-01-01T02:00Z", cache_dir=cache)
    assert meta2["from_cache"] is True and meta2["fetched_at"] == meta["fetched_at"]
    pd.testing.assert_frame_equal(again, data)


def _gridtwin(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "twin", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)


def test_cli_fetch_against_local_server_prints_path_and_summary(tmp_path):
    cache = tmp_path / "cache"
    with local_entsoe([_xml()]) as (url, seen):
        out = _gridtwin(_env(url, tmp_path), "ci", "fetch", "--country", "de", "--start", "2025-01-01T00:00Z",
                        "--end", "2025-01-01T02:00Z", "--cache-dir", str(cache))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"{cache / 'DE_2025-01-01_2025-01-01T0200Z.parquet'}  (fetched)"
    # mean CI (130.75 + 202.6) / 2 = 166.675; mean cff (0.75 + 0.6) / 2 = 0.675
    assert lines[1] == ("  DE (ENTSO-E DE_LU) 2025-01-01T00:00Z to 2025-01-01T02:00Z: 2 hours, "
                        "mean CI 166.7 gCO2eq/kWh, mean carbon-free fraction 0.675")
    assert len(seen) == 1


def test_cli_fetch_refuses_data_that_do_not_cover_the_period(tmp_path):
    # the server has 00:00-02:00 only; three hours asked: exit 1 naming the first hour missing
    cache = tmp_path / "cache"
    with local_entsoe([_xml()]) as (url, seen):
        out = _gridtwin(_env(url, tmp_path), "ci", "fetch", "--country", "DE", "--start", "2025-01-01",
                        "--end", "2025-01-01T03:00Z", "--cache-dir", str(cache))
    assert out.returncode == 1
    assert "1 of 3 hours have no data, first 2025-01-01T02:00Z (data cover 2025-01-01T00:00Z to " \
           "2025-01-01T02:00Z)" in out.stderr
    assert not cache.exists() or not any(cache.iterdir())


@pytest.mark.parametrize(("status", "expect"), [
    (401, "401 Client Error"),
    (500, "500 Server Error"),
])
def test_cli_fetch_http_errors_exit_1_without_leaking_the_token(tmp_path, status, expect):
    cache = tmp_path / "cache"
    with local_entsoe([(status, "text/plain", b"refused by the test server")]) as (url, seen):
        out = _gridtwin(_env(url, tmp_path), "ci", "fetch", "--country", "PL", "--start", "2025-01-01",
                        "--end", "2025-01-02", "--cache-dir", str(cache))
    assert out.returncode == 1
    assert out.stderr.startswith("gridtwin ci fetch: ENTSO-E A75 generation for PL (PL) ")
    assert expect in out.stderr and "Traceback" not in out.stderr
    assert ("token was refused" in out.stderr) == (status == 401)
    assert TOKEN not in out.stderr and "securityToken=<token>" in out.stderr
    assert len(seen) == 1 and seen[0]["in_Domain"] == "10YPL-AREA-----S"  # HTTP errors are not retried
    assert not cache.exists() or not any(cache.iterdir())


# ------------------------------------------------------------------ the real API


@pytest.mark.remote_data
def test_real_entsoe_api_one_day_de(tmp_path):
    try:
        te.resolve_token()
    except te.MissingTokenError:
        pytest.skip(f"no ENTSO-E API token ({te.TOKEN_ENV} or {te.token_file()})")
    data, meta = te.get_carbon_intensity("DE", "2025-01-15", "2025-01-16", cache_dir=tmp_path, missing="zero",
                                         retry_count=2, retry_delay_s=5)
    assert len(data) == 24 and meta["from_cache"] is False and meta["zone"] == "DE_LU"
    ci = data["carbon_intensity_g_per_kwh"].to_numpy()
    cff = data["carbon_free_fraction"].to_numpy()
    # plausibility only: DE mixes sit between nuclear/wind (~12 g) and coal (820 g)
    assert np.all((ci > 50) & (ci < 820)) and np.all((cff >= 0) & (cff <= 1))
