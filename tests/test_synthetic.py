"""Tests of the synthetic demo companies (crmkit.demo.synthetic) and the committed demo
workspaces."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crmkit.core.paths import DATA
from crmkit.demo import profiles, synthetic
from crmkit.demo.synthetic import (
    ARCHETYPES,
    DIALECTS,
    PROFILES,
    RELATIONSHIPS,
    generate,
    write_workspace,
)
from crmkit.settings.client import ClientConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo"
MAX_BYTES = 3 * 1024 * 1024
AS_OF = pd.Timestamp(2026, 10, 31)


def _make_demo_module():
    spec = importlib.util.spec_from_file_location("make_demo", DEMO / "make_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", params=list(PROFILES))
def client(request):
    return generate(request.param, seed=3)


@pytest.fixture(scope="module")
def retail():
    return generate("retail", seed=3)


def _per_customer(client) -> pd.DataFrame:
    bought = client.transactions[client.transactions["amount"] > 0]
    stats = bought.groupby("customer_id").agg(
        n=("amount", "size"), first=("date", "min"), last=("date", "max"))
    stats["archetype"] = client.archetype.reindex(stats.index).to_numpy()
    return stats


# ---- determinism --------------------------------------------------------------------------

@pytest.mark.parametrize("profile", list(PROFILES))
def test_same_seed_gives_identical_frames(profile):
    a, b = generate(profile, n_customers=400, seed=5), generate(profile, n_customers=400, seed=5)
    for name, frame in a.frames().items():
        pd.testing.assert_frame_equal(frame, b.frames()[name])
    pd.testing.assert_series_equal(a.archetype, b.archetype)
    assert a.config == b.config


@pytest.mark.parametrize("profile", list(PROFILES))
def test_different_seeds_give_different_frames(profile):
    a, b = generate(profile, n_customers=400, seed=5), generate(profile, n_customers=400, seed=6)
    assert not a.transactions.equals(b.transactions)
    assert not a.customers.equals(b.customers)


# ---- canonical frames ---------------------------------------------------------------------

def test_frames_have_canonical_columns_and_types(client):
    tx = client.transactions
    assert list(tx.columns) == ["customer_id", "date", "amount", "product", "category",
                                "margin", "promotion"]
    assert tx["date"].dtype == "datetime64[ns]"
    assert (tx["date"] == tx["date"].dt.normalize()).all()
    assert tx["amount"].dtype == "float64" and tx["margin"].dtype == "float64"
    assert pd.api.types.is_string_dtype(tx["customer_id"])
    assert client.customers.columns[0] == "customer_id"
    assert client.customers["customer_id"].is_unique
    assert list(client.interactions.columns) == ["customer_id", "date", "channel",
                                                 "relationship_type", "minutes"]
    assert list(client.survey.columns) == ["customer_id", "satisfaction", "nps",
                                           "preferred_relationship"]
    assert client.survey["nps"].dtype == "Int64"
    assert "archetype" not in client.customers.columns


def test_every_transaction_customer_exists(client):
    known = set(client.customers["customer_id"])
    assert set(client.transactions["customer_id"]) <= known
    assert set(client.interactions["customer_id"]) <= known
    assert set(client.survey["customer_id"]) <= known
    assert client.archetype.index.equals(pd.Index(client.customers["customer_id"]))


def test_every_customer_bought_something_and_nothing_after_as_of(client):
    tx = client.transactions
    assert tx["customer_id"].nunique() == len(client.customers)
    assert tx["date"].max() <= AS_OF
    assert client.interactions["date"].max() <= AS_OF
    assert tx["date"].min() >= AS_OF - pd.Timedelta(days=3 * 366)


def test_all_archetypes_present_in_profile_proportions(client):
    spec = PROFILES[client.profile]
    observed = client.archetype.value_counts(normalize=True)
    for name, behaviour in zip(ARCHETYPES, spec.behaviours, strict=True):
        assert abs(observed[name] - behaviour.share) < 0.05, name


# ---- archetypes are distinguishable in the data -------------------------------------------

def test_loyal_buy_more_than_three_times_as_often_as_one_off(client):
    stats = _per_customer(client)
    median = stats.groupby("archetype")["n"].median()
    assert median["one_off"] == 1
    assert median["loyal"] > 3 * median["one_off"]


def test_one_off_buyers_buy_exactly_once(client):
    stats = _per_customer(client)
    assert (stats.loc[stats["archetype"] == "one_off", "n"] == 1).all()


def test_big_spenders_orders_twice_as_large(client):
    bought = client.transactions[client.transactions["amount"] > 0]
    is_big = client.archetype.reindex(bought["customer_id"]).to_numpy() == "big_spender"
    assert bought["amount"][is_big].mean() > 2 * bought["amount"][~is_big].mean()


def test_big_spenders_have_higher_margin_rate(client):
    tx = client.transactions[client.transactions["amount"] > 0]
    arch = client.archetype.reindex(tx["customer_id"]).to_numpy()
    rate = tx.groupby(arch)["margin"].sum() / tx.groupby(arch)["amount"].sum()
    assert rate["big_spender"] > rate["one_off"]


def test_lapsing_customers_stopped_more_than_180_days_ago(client):
    stats = _per_customer(client)
    lapsing = stats[stats["archetype"] == "lapsing"]
    assert (lapsing["last"] < AS_OF - pd.Timedelta(days=180)).all()
    assert (lapsing["last"] > AS_OF - pd.Timedelta(days=19 * 31)).all()
    assert lapsing["n"].min() >= 2
    # ... and no line at all, returns included, in the last 180 days.
    tx = client.transactions
    ids = lapsing.index
    assert tx.loc[tx["customer_id"].isin(ids), "date"].max() < AS_OF - pd.Timedelta(days=180)


def test_new_customers_first_bought_in_last_four_months(client):
    stats = _per_customer(client)
    new = stats[stats["archetype"] == "new"]
    assert (new["first"] >= AS_OF - pd.Timedelta(days=125)).all()
    others = stats[stats["archetype"] != "new"]
    assert (others["first"] < AS_OF - pd.Timedelta(days=125)).mean() > 0.95


def test_active_archetypes_still_buying(client):
    stats = _per_customer(client)
    loyal = stats[stats["archetype"] == "loyal"]
    assert (loyal["last"] > AS_OF - pd.Timedelta(days=180)).mean() > 0.9


def test_promotion_response_differs_by_archetype(client):
    tx = client.transactions[client.transactions["amount"] > 0]
    arch = client.archetype.reindex(tx["customer_id"]).to_numpy()
    used = tx["promotion"].notna().groupby(arch).mean()
    assert used["one_off"] > 2 * used["big_spender"]
    assert tx["promotion"].notna().any()


def test_big_spenders_get_dedicated_personal_assistance(client):
    inter = client.interactions
    arch = client.archetype.reindex(inter["customer_id"]).to_numpy()
    dedicated = (inter["relationship_type"] == "dedicated_personal_assistance").groupby(arch)
    share = dedicated.mean()
    assert share["big_spender"] > 0.4
    assert share.drop("big_spender").max() == 0


def test_satisfaction_depends_on_archetype(client):
    survey = client.survey
    arch = client.archetype.reindex(survey["customer_id"]).to_numpy()
    mean = survey["satisfaction"].groupby(arch).mean()
    assert mean["loyal"] > mean["lapsing"] + 1


# ---- retail specifics ---------------------------------------------------------------------

def test_retail_seasonality_peaks_in_november_december(retail):
    tx = retail.transactions
    share = tx.loc[tx["date"].dt.month.isin([11, 12]), "amount"].sum() / tx["amount"].sum()
    assert share > 2 / 12 + 0.05
    monthly = tx.groupby(tx["date"].dt.month)["amount"].sum()
    assert monthly.idxmax() == 12
    assert monthly[7] > monthly[[6, 8]].mean()   # summer sales


def test_retail_has_returns(retail):
    tx = retail.transactions
    returns = tx[tx["amount"] < 0]
    assert 0.01 < len(returns) / len(tx) < 0.10
    assert (returns["margin"] < 0).all()
    assert returns["promotion"].isna().all()


def test_retail_promotion_codes(retail):
    codes = set(retail.transactions["promotion"].dropna())
    assert {"SPRING10", "BLACKFRIDAY", "WELCOME15"} <= codes
    bf = retail.transactions[retail.transactions["promotion"] == "BLACKFRIDAY"]
    assert set(bf["date"].dt.month) <= {11, 12}


def test_retail_category_spend_exceeds_spend_with_us(retail):
    spend = retail.customers.set_index("customer_id")["category_spend"]
    known = spend.dropna()
    assert 0.2 < len(known) / len(spend) < 0.7
    tx = retail.transactions
    recent = tx[tx["date"] > AS_OF - pd.Timedelta(days=365)]
    with_us = recent.groupby("customer_id")["amount"].sum().reindex(known.index).fillna(0)
    assert (known > with_us).all()


def test_retail_margin_is_an_amount():
    tx = generate("retail", n_customers=500, seed=1).transactions
    bought = tx[tx["amount"] > 0]
    rate = bought["margin"] / bought["amount"]
    assert 0.2 < rate.median() < 0.7
    assert (bought["margin"] < bought["amount"]).all()


# ---- survey and interactions --------------------------------------------------------------

def test_survey_values_in_range(client):
    survey = client.survey
    n = len(client.customers)
    assert 0.15 <= len(survey) / n <= 0.30
    assert survey["satisfaction"].between(1, 5).all()
    nps = survey["nps"].dropna()
    assert nps.between(0, 10).all()
    assert set(survey["preferred_relationship"]) <= set(RELATIONSHIPS)
    assert np.corrcoef(survey.dropna()["satisfaction"], survey.dropna()["nps"].astype(float))[
        0, 1] > 0.6
    assert survey["customer_id"].is_unique


def test_interactions_values(client):
    inter = client.interactions
    assert set(inter["relationship_type"]) <= set(RELATIONSHIPS)
    assert set(inter["channel"]) <= {"web", "phone", "email", "store", "branch", "app", "chat"}
    assert (inter["minutes"] > 0).all()


# ---- configuration ------------------------------------------------------------------------

def test_config_validates(client):
    config = ClientConfig.model_validate(client.config)
    assert config.as_of == date(2026, 10, 31)
    for key in ("segmentation", "relationships", "scenarios", "crm_project"):
        assert key not in client.config


def test_configs_are_profile_specific():
    configs = {p: ClientConfig.model_validate(generate(p, n_customers=50).config)
               for p in PROFILES}
    assert configs["bank"].language == "es"
    assert configs["retail"].language == configs["telecom"].language == "en"
    assert configs["telecom"].currency in {"USD", "GBP"}
    assert len({c.branding.primary_color for c in configs.values()}) == 3
    assert "comisiones" in configs["bank"].context.external.competitors.note


# ---- writing workspaces -------------------------------------------------------------------

@pytest.mark.parametrize("dialect", DIALECTS)
def test_write_workspace_dialects(tmp_path, dialect):
    client = generate("bank", n_customers=200, seed=2)
    path = write_workspace(client, tmp_path / "ws", dialect=dialect)
    assert sorted(p.name for p in path.iterdir()) == [
        "client.yaml", "customers.csv", "interactions.csv", "survey.csv", "transactions.csv"]
    raw = (path / "transactions.csv").read_bytes()
    if dialect == "standard":
        assert raw.startswith(b"customer_id,date,amount,")
        pd.read_csv(path / "transactions.csv", dtype={"customer_id": str})
    elif dialect == "spanish":
        assert raw.startswith("Nº Cliente;Fecha;Importe;Producto;Categoría;Margen;Promoción"
                              .encode("latin-1"))
        frame = pd.read_csv(path / "transactions.csv", sep=";", decimal=",",
                            encoding="latin-1", dtype={"Nº Cliente": str})
        assert frame["Importe"].sum() == pytest.approx(client.transactions["amount"].sum())
        first = client.transactions["date"].iloc[0].strftime("%d/%m/%Y")
        assert frame["Fecha"].iloc[0] == first
    else:
        assert raw.startswith(b"\xef\xbb\xbfcustomer_id;date;amount;")
    config = load_config(path)
    if dialect == "spanish":
        assert config.columns["transactions"]["customer_id"] == "Nº Cliente"


def test_write_workspace_refuses_to_overwrite(tmp_path):
    client = generate("retail", n_customers=50)
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        write_workspace(client, tmp_path / "ws")
    assert [p.name for p in (tmp_path / "ws").iterdir()] == ["notes.txt"]
    write_workspace(client, tmp_path / "empty")       # a missing folder is fine
    (tmp_path / "empty2").mkdir()
    write_workspace(client, tmp_path / "empty2")      # and so is an empty one
    assert not list(tmp_path.glob(".*"))               # no temporary folder left behind


def test_unknown_arguments_rejected(tmp_path):
    with pytest.raises(ValueError, match="profile"):
        generate("airline")
    with pytest.raises(ValueError, match="dialect"):
        write_workspace(generate("retail", n_customers=10), tmp_path / "x", dialect="french")


def test_command_line(tmp_path):
    out = tmp_path / "big"
    result = subprocess.run(
        [sys.executable, "-m", "crmkit.demo.synthetic", "telecom", str(out), "--customers", "300",
         "--seed", "4", "--dialect", "spanish"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "300 customers" in result.stdout
    assert (out / "transactions.csv").read_bytes().startswith("Nº Cliente;".encode("latin-1"))
    again = subprocess.run([sys.executable, "-m", "crmkit.demo.synthetic", "telecom", str(out)],
                           capture_output=True, text=True, check=False)
    assert again.returncode == 2 and "not empty" in again.stderr


def test_big_generation_is_fast():
    import time

    start = time.perf_counter()
    client = generate("retail", n_customers=100_000, seed=1)
    elapsed = time.perf_counter() - start
    assert len(client.transactions) > 500_000
    assert elapsed < 15      # about 1-2 s on a laptop; generous for slow CI machines


# ---- the committed demo workspaces --------------------------------------------------------

DEMO_NAMES = ["retail", "bank", "telecom"]


@pytest.mark.parametrize("name", DEMO_NAMES)
def test_demo_workspace_is_small(name):
    files = list((DEMO / name).iterdir())
    assert {p.name for p in files} >= {"client.yaml", "customers.csv", "transactions.csv"}
    assert sum(p.stat().st_size for p in files) <= MAX_BYTES


def test_demo_workspaces_have_enough_data():
    tx = pd.read_csv(DEMO / "retail" / "transactions.csv")
    assert len(tx) >= 15_000


def test_demo_workspaces_regenerate_byte_identically(tmp_path):
    make_demo = _make_demo_module()
    make_demo.build(tmp_path)
    assert make_demo.differences(tmp_path, DEMO) == []


@pytest.mark.parametrize("name", DEMO_NAMES)
def test_demo_workspace_loads(name):
    """The committed workspace loads with crmkit.inputs.workspace and gives back the generated
    frames."""
    workspace = pytest.importorskip("crmkit.inputs.workspace")
    ws = workspace.load_workspace(DEMO / name)
    spec = dict(_make_demo_module().DEMOS[name])
    spec.pop("dialect")
    expected = generate(**spec)
    assert ws.as_of == date(2026, 10, 31)
    assert ws.config.name == expected.config["name"]
    for file, frame in expected.frames().items():
        loaded = getattr(ws, file)
        assert loaded is not None, file
        assert set(loaded.columns) == set(frame.columns), file
        pd.testing.assert_frame_equal(loaded.reset_index(drop=True)[list(frame.columns)], frame,
                                      check_dtype=False, obj=f"{name}/{file}")


# ---- the profile files --------------------------------------------------------------------

def test_profiles_are_read_from_the_data_files():
    assert profiles.FOLDER == DATA / "demo" / "profiles"
    assert list(PROFILES) == ["retail", "bank", "telecom"]
    assert profiles.read_profiles(profiles.FOLDER) == PROFILES
    assert synthetic.RETAIL is PROFILES["retail"] and synthetic.TELECOM.plans


@pytest.mark.parametrize(("file", "old", "new", "message"), [
    ("retail.yaml", "rate:  8.0", "rate_shap: 8.0",
     "retail.yaml: behaviours.loyal.rate_shap: unknown key (did you mean 'rate_shape'?)"),
    ("bank.yaml", "n_customers: 2500\n", "", "bank.yaml: n_customers: missing"),
    ("telecom.yaml", "category: movil, price: 10", "category: mobile, price: 10",
     "telecom.yaml: plans[0].category: 'mobile' is not one of the categories"),
    ("common.yaml", "  self_service: 4.0", "  self_service: four",
     "common.yaml: minutes.self_service: expected a number"),
])
def test_malformed_profile_names_the_file_and_the_key(tmp_path, file, old, new, message):
    folder = tmp_path / "profiles"
    shutil.copytree(profiles.FOLDER, folder)
    text = (folder / file).read_text(encoding="utf-8")
    assert old in text
    (folder / file).write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(profiles.ProfileError, match=re.escape(message)):
        profiles.read_profiles(folder)
