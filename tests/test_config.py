from __future__ import annotations

from pathlib import Path

import pytest

from crawler.config import ConfigError, load_settings
from crawler.registry import default_registry

REAL_BASE_URLS = default_registry().real_base_urls


def _toml(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "tertib.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_defaults() -> None:
    s = load_settings(env={}, config_file=Path("/nonexistent/tertib.toml"))
    assert s.data_dir == Path("tertib-data")
    assert s.db_url.startswith("sqlite:///") and s.db_url.endswith("tertib-data/tertib.sqlite3")
    assert dict(s.base_urls) == REAL_BASE_URLS
    assert s.recheck_days == (1, 3, 7, 30)


def test_env_over_file_over_default(tmp_path: Path) -> None:
    cfg = _toml(tmp_path, 'data_dir = "/from/file"\nthreshold_strong = 0.9\nrecheck_days = [2, 4]\n')
    s = load_settings(env={}, config_file=cfg)
    assert (s.data_dir, s.threshold_strong, s.recheck_days) == (Path("/from/file"), 0.9, (2, 4))
    s = load_settings(env={"TERTIB_DATA_DIR": "/from/env", "TERTIB_RECHECK_DAYS": "1,7"}, config_file=cfg)
    assert s.data_dir == Path("/from/env")
    assert s.threshold_strong == 0.9  # file still applies where env is silent
    assert s.recheck_days == (1, 7)


def test_config_file_named_by_env(tmp_path: Path) -> None:
    cfg = _toml(tmp_path, '[tertib]\ndatabase_url = "postgresql+psycopg://x/y"\n')
    s = load_settings(env={"TERTIB_CONFIG": str(cfg)})
    assert s.db_url == "postgresql+psycopg://x/y"
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(env={"TERTIB_CONFIG": str(tmp_path / "missing.toml")})


def test_sandbox_maps_every_host_under_its_prefix() -> None:
    s = load_settings(env={"TERTIB_SANDBOX_URL": "http://127.0.0.1:9999/"}, config_file=Path("/nonexistent"))
    assert s.base_url("tokopedia-gql") == "http://127.0.0.1:9999/tokopedia-gql"
    assert s.base_url("shopee") == "http://127.0.0.1:9999/shopee"
    s2 = load_settings(env={}, config_file=Path("/nonexistent"), sandbox_url="http://127.0.0.1:1")
    assert s2.base_url("blibli") == "http://127.0.0.1:1/blibli"


def test_single_host_override_and_file_base_urls(tmp_path: Path) -> None:
    cfg = _toml(tmp_path, '[base_urls]\nlazada = "http://mirror.local/lazada"\n')
    s = load_settings(env={"TERTIB_BASE_URL_TOKOPEDIA_GQL": "http://gql.local"}, config_file=cfg)
    assert s.base_url("lazada") == "http://mirror.local/lazada"
    assert s.base_url("tokopedia-gql") == "http://gql.local"
    assert s.base_url("shopee") == REAL_BASE_URLS["shopee"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TERTIB_THRESHOLD_STRONG": "high"}, "threshold_strong"),
        ({"TERTIB_RECHECK_DAYS": "1,x"}, "recheck_days"),
        ({"TERTIB_THRESHOLD_WEAK": "0.9"}, "thresholds must satisfy"),
    ],
)
def test_bad_values_raise_one_clear_error(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env=env, config_file=Path("/nonexistent"))


def test_unknown_key_and_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_settings(env={}, config_file=_toml(tmp_path, 'colour = "red"\n'))
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(env={}, config_file=_toml(tmp_path, "data_dir = \n"))


def test_chromium_setting(tmp_path: Path) -> None:
    fake = tmp_path / "chromium"
    fake.write_text("")
    assert load_settings(env={"TERTIB_CHROMIUM": str(fake)}).chromium_path() == str(fake)
    assert load_settings(env={"TERTIB_CHROMIUM": str(tmp_path / "none")}).chromium_path() is None
