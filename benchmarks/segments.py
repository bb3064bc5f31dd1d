"""Time the segmentation step (workbook 02) on a base of about a million transaction lines.

Run it by hand::

    .venv/bin/python benchmarks/segments.py [--generator synthetic|numpy]
        [--customers N] [--transactions 1000000] [--no-lifetimes] [--no-load] [--no-tracemalloc]

Data: ``--generator synthetic`` (the default) is the retail demo company of
:mod:`crmkit.demo.synthetic` (categories, margins, promotions, a survey), with as many customers as
give ``--transactions`` lines (about 7 lines a customer over three years: some 143,000
customers for a million lines), unless ``--customers`` is given. ``--generator numpy`` is a
plain random log with exactly ``--customers`` (default 100,000) and ``--transactions`` lines.

Each step of the chain is timed once, as the workbook runs it: the BG/NBD summary, the RFM table
with its scores and the segment map, the segment profiles, the two value models, the CLV, the
bootstrap per segment, the clustering, then the whole
:func:`crmkit.analysis.segmentation.segment_customers`
and the rest of workbook 02's tables. Peak memory is the process's resident high-water mark
(``ru_maxrss``) during each step, reset before the step where Linux allows it; a second pass under
``tracemalloc`` (slow, hence not timed) gives what each step allocates on top of the data. In the
same run, ``lifetimes`` computes the same summary and fits the same models on the same customers,
for the ratio ours / lifetimes (below 1: crmkit is faster). Loading the workspace from CSV files
(written to a temporary folder first) is timed separately.

Targets (issue 3): the chain in at most 15 s and 2 GB; our fits no slower than lifetimes'.
Figures only: this script asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from crmkit.analysis import clustering, profiles, rfm, segment_maps, segmentation, valuation, value
from crmkit.demo import synthetic
from crmkit.inputs.workspace import Workspace, load_workspace
from crmkit.settings.client import ClientConfig

TARGET_SECONDS = 15.0
TARGET_MIB = 2048.0
#: Customers of the pilot that measures how many lines a synthetic customer has.
PILOT_CUSTOMERS = 20_000


# ---- data ------------------------------------------------------------------------------------

def synthetic_client(customers: int | None, lines: int, seed: int
                     ) -> tuple[synthetic.SyntheticClient, str]:
    """The retail demo company, sized to ``customers`` or to about ``lines`` lines."""
    if customers is not None:
        how = f"{customers:,} customers asked"
    else:
        pilot = synthetic.generate("retail", n_customers=PILOT_CUSTOMERS, seed=seed)
        per_customer = len(pilot.transactions) / PILOT_CUSTOMERS
        customers = int(round(lines / per_customer))
        how = (f"{per_customer:.2f} lines per customer in a pilot of {PILOT_CUSTOMERS:,}, "
               f"so {customers:,} customers for about {lines:,} lines")
    client = synthetic.generate("retail", n_customers=customers, seed=seed)
    return client, f"crmkit.demo.synthetic retail profile, seed {seed} ({how})"


def numpy_client(customers: int, lines: int, seed: int) -> tuple[synthetic.SyntheticClient, str]:
    """A plain random log: heterogeneous rates, lifetimes and basket sizes, 3 % returns.

    Every customer buys at least once; the other lines are shared out in proportion to a
    Gamma(0.6) purchase rate. A customer is born on a uniform day of the three years before
    ``as_of`` and buys until an exponential lifetime (mean 500 days) or ``as_of``.
    """
    rng = np.random.default_rng(seed)
    config = synthetic.generate("retail", n_customers=50, seed=seed).config
    as_of = np.datetime64(config["as_of"], "D")
    days = 3 * 365
    rate = rng.gamma(0.6, 1.0, customers)
    counts = 1 + rng.multinomial(lines - customers, rate / rate.sum())
    birth = rng.integers(0, days, customers)
    death = np.minimum(birth + rng.exponential(500, customers).astype(np.int64), days - 1)
    owner = np.repeat(np.arange(customers), counts)
    first = np.r_[0, np.cumsum(counts)[:-1]]
    day = birth[owner] + (rng.random(lines) * (death - birth + 1)[owner]).astype(np.int64)
    day[first] = birth
    basket = rng.lognormal(0.0, 0.5, customers)
    amount = (basket[owner] * rng.lognormal(3.5, 0.8, lines)).round(2)
    amount[rng.random(lines) < 0.03] *= -1
    ids = np.char.add("C", np.char.zfill(np.arange(1, customers + 1).astype(str), 7)).astype(object)
    categories = np.array(["home", "women", "men", "kids", "shoes", "beauty"], dtype=object)
    transactions = pd.DataFrame({
        "customer_id": ids[owner],
        "date": (as_of - (days - 1) + day).astype("datetime64[ns]"),
        "amount": amount,
        "category": categories[rng.integers(0, len(categories), lines)],
    })
    frame = pd.DataFrame({"customer_id": ids,
                          "region": np.array(["north", "south", "east", "west"],
                                             dtype=object)[rng.integers(0, 4, customers)]})
    empty = pd.DataFrame()
    client = synthetic.SyntheticClient(config=config, customers=frame, transactions=transactions,
                                       interactions=empty, survey=empty,
                                       archetype=pd.Series(dtype=object), profile="numpy",
                                       seed=seed)
    return client, f"plain numpy generator, seed {seed}"


def workspace_of(client: synthetic.SyntheticClient, folder: Path) -> Workspace:
    """The workspace the loader would return, built straight from the frames."""
    optional = {k: (f if len(f) else None) for k, f in (("interactions", client.interactions),
                                                         ("survey", client.survey))}
    return Workspace(path=folder, slug=folder.name,
                     config=ClientConfig.model_validate(client.config),
                     customers=client.customers, transactions=client.transactions,
                     as_of=client.as_of, **optional)


def write_files(client: synthetic.SyntheticClient, folder: Path) -> Path:
    """Write the client as a workspace folder (CSV files and client.yaml)."""
    if client.profile != "numpy":
        return synthetic.write_workspace(client, folder)
    folder.mkdir(parents=True)
    (folder / "client.yaml").write_text(yaml.safe_dump(client.config, allow_unicode=True),
                                        encoding="utf-8")
    client.customers.to_csv(folder / "customers.csv", index=False)
    client.transactions.to_csv(folder / "transactions.csv", index=False, date_format="%Y-%m-%d")
    return folder


# ---- measuring -------------------------------------------------------------------------------

@contextlib.contextmanager
def quiet():
    """lifetimes warns a lot under pandas 3, and prints failed optimisations: keep the table
    readable."""
    with warnings.catch_warnings(), np.errstate(all="ignore"), \
            contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _rss_mib() -> float:
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def _reset_peak() -> bool:
    """Reset the resident high-water mark (Linux >= 4.0); False where it cannot be."""
    try:
        with open(f"/proc/{os.getpid()}/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    """Seconds and peak resident MiB of one call, and its result."""
    _reset_peak()
    start = time.perf_counter()
    with quiet():
        result = fn()
    return time.perf_counter() - start, _rss_mib(), result


def allocated_mib(fn: Callable[[], object]) -> float:
    """Peak of what ``fn`` allocates (tracemalloc; numpy arrays included)."""
    tracemalloc.start()
    try:
        with quiet():
            fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


# ---- the run ---------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", choices=["synthetic", "numpy"], default="synthetic")
    parser.add_argument("--customers", type=int, default=None,
                        help="synthetic: default as many as give --transactions lines; "
                             "numpy: default 100,000")
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-lifetimes", action="store_true", help="time crmkit only")
    parser.add_argument("--no-load", action="store_true", help="skip writing and loading CSVs")
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the tracemalloc pass")
    args = parser.parse_args()

    started = time.perf_counter()
    if args.generator == "numpy":
        client, source = numpy_client(args.customers or 100_000, args.transactions, args.seed)
    else:
        client, source = synthetic_client(args.customers, args.transactions, args.seed)
    generated = time.perf_counter() - started

    lt = summary_data_from_transaction_data = None
    if not args.no_lifetimes:
        try:
            with quiet():
                import lifetimes as lt
                from lifetimes.utils import summary_data_from_transaction_data
        except ImportError:
            print("lifetimes is not installed: timing crmkit only.")

    tmp = Path(tempfile.mkdtemp(prefix="crmkit-bench-segments-"))
    try:
        run(args, client, source, generated, lt, summary_data_from_transaction_data, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args, client, source, generated, lt, summary_data_from_transaction_data, tmp) -> None:
    """Time every step and print the tables (the folder ``tmp`` is for the CSV files)."""
    ws = workspace_of(client, tmp / "bench")
    config = ws.config
    settings, assumptions = config.segmentation, config.assumptions
    tx = ws.transactions
    as_of = pd.Timestamp(ws.as_of)
    print(f"crmkit segmentation benchmark; Python {platform.python_version()}, numpy "
          f"{np.__version__}, pandas {pd.__version__}"
          + (f", lifetimes {lt.__version__}" if lt is not None else "")
          + f"; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"Data: {source}: {len(ws.customers):,} customers, {len(tx):,} transaction lines "
          f"of {tx['customer_id'].nunique():,} buyers, {tx['date'].min():%Y-%m-%d} to "
          f"{as_of:%Y-%m-%d}; generated in {generated:.1f} s")
    print(f"Settings: map {settings.map}, method {settings.method}, k in "
          f"{settings.k_min}..{settings.k_max}, horizon {assumptions.horizon_months} months")
    if not _reset_peak():
        print("(the resident peak cannot be reset here: each step shows the peak so far)")
    print()

    # Intermediate results, shared by the steps that follow (as in segment_customers).
    state: dict[str, object] = {}

    def summarise():
        state["summary"] = value.summarise(tx, observation_period_end=as_of)

    def rfm_and_map():
        state["rfm"] = rfm.rfm_table(tx, ws.as_of, frequency=settings.frequency,
                                     gross_margin=assumptions.gross_margin)
        state["scores"] = rfm.rfm_scores(state["rfm"])
        segment_map = segment_maps.from_settings(settings, workspace=ws.path)
        table = state["scores"] if segment_map.kind == "scores" else state["rfm"]
        state["segments"] = segment_maps.assign(table, segment_map).segments

    def segment_profiles():
        profiles.segment_profiles(ws.customers, tx, state["segments"], ws.survey, as_of=ws.as_of,
                                  gross_margin=assumptions.gross_margin, rfm=state["rfm"])

    def columns(*names):
        summary = state["summary"]
        return [summary[n] for n in names]

    def bg_fit():
        state["bg"] = valuation.fit_with_fallback(value.BetaGeo(),
                                                  *columns("frequency", "recency", "T"))

    def gg_fit():
        repeat = value.repeat_customers(state["summary"])
        state["gg"] = valuation.fit_with_fallback(value.GammaGamma(), repeat["frequency"],
                                        repeat["monetary_value"])

    def clv():
        bg, history = state["bg"], columns("frequency", "recency", "T")
        state["alive"] = bg.probability_alive(*history)
        bg.expected_purchases(assumptions.horizon_months * segmentation.DAYS_PER_MONTH, *history)
        state["clv"] = value.customer_lifetime_value(
            bg, state["gg"], *columns("frequency", "recency", "T", "monetary_value"),
            time=assumptions.horizon_months, margin=assumptions.gross_margin,
            discount_rate=assumptions.discount_rate)

    def bootstrap():
        segments = state["segments"].astype(str).reindex(state["clv"].index)
        value.segment_value(state["clv"], state["alive"], segments, n_boot=1000)

    def cluster():
        clustering.cluster(state["rfm"], k=settings.k, k_range=(settings.k_min, settings.k_max),
                           seed=settings.seed)

    def segment_customers():
        state["seg"] = segmentation.segment_customers(ws, config.language)

    def workbook_profiles():
        seg = state["seg"]
        profiles.segment_profiles(ws.customers, tx, seg.segments, ws.survey, as_of=ws.as_of,
                                  gross_margin=assumptions.gross_margin, rfm=seg.rfm)

    def value_by_segment():
        segmentation.value_by_segment(state["seg"])

    def other_tables():
        seg = state["seg"]
        profiles.average_customer_gap(tx, ws.as_of, rfm=seg.rfm)
        if "category" in tx:
            profiles.consumption_mix(tx, seg.segments, as_of=ws.as_of)
        attribute = segmentation.typology_attribute(ws.customers, settings.attribute)
        if attribute:
            profiles.typological_mix(ws.customers, seg.segments, attribute)
        if "promotion" in tx:
            profiles.promotion_history(tx, seg.segments, as_of=ws.as_of)
        segmentation.satisfaction(seg, ws.survey)
        profiles.differentiate(tx, seg.segments, as_of=ws.as_of,
                               gross_margin=assumptions.gross_margin,
                               window_months=assumptions.window_months,
                               top_share=settings.top_share, decline=settings.decline)

    steps: list[tuple[str, Callable[[], object], bool]] = [
        ("summary (value.summarise)", summarise, False),
        ("RFM table + scores + map", rfm_and_map, False),
        ("segment profiles", segment_profiles, False),
        ("BG/NBD fit", bg_fit, False),
        ("Gamma-Gamma fit", gg_fit, False),
        ("CLV + P(alive) + purchases", clv, False),
        ("segment_value (1000 boot)", bootstrap, False),
        ("clustering", cluster, False),
        ("segment_customers (all above)", segment_customers, True),
        ("segment profiles", workbook_profiles, True),
        ("value_by_segment (1000 boot)", value_by_segment, True),
        ("other workbook 02 tables", other_tables, True),
    ]

    header = f"{'step':<34}{'seconds':>9}{'peak RSS MiB':>14}"
    header += "" if args.no_tracemalloc else f"{'allocated MiB':>15}"
    print(header)
    print("-" * len(header))
    chain_seconds, chain_peak = 0.0, 0.0
    printed_chain = False
    for name, fn, in_chain in steps:
        if in_chain and not printed_chain:
            print("workbook 02 as it runs:")
            printed_chain = True
        seconds, peak, _ = timed(fn)
        line = f"{('  ' if in_chain else '') + name:<34}{seconds:>9.2f}{peak:>14.0f}"
        if in_chain:
            chain_seconds += seconds
            chain_peak = max(chain_peak, peak)
        if not args.no_tracemalloc:
            line += f"{allocated_mib(fn):>15.0f}"
        print(line, flush=True)
    print(f"{'  whole chain':<34}{chain_seconds:>9.2f}{chain_peak:>14.0f}")
    verdict = "within" if chain_seconds <= TARGET_SECONDS and chain_peak <= TARGET_MIB else "OVER"
    print(f"Target {TARGET_SECONDS:.0f} s and {TARGET_MIB / 1024:.0f} GB: {verdict} target.")
    seg = state["seg"]
    print(f"Clustering: k = {seg.clusters.k} on a sample of {seg.clusters.sample_size:,}; "
          f"customer-base model {seg.valuation.model}, penalizer "
          f"{getattr(seg.valuation.purchases, 'penalizer_', '-')}, Gamma-Gamma penalizer "
          f"{getattr(seg.valuation.spend, 'penalizer_', '-')}")

    if lt is not None:
        print()
        compare_with_lifetimes(lt, summary_data_from_transaction_data, tx, as_of, state,
                               assumptions)

    if not args.no_load:
        print()
        started = time.perf_counter()
        folder = write_files(client, tmp / "files")
        written = time.perf_counter() - started
        size = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
        seconds, peak, loaded = timed(lambda: load_workspace(folder))
        print(f"Loading the workspace from CSV ({size:.0f} MiB written in {written:.1f} s, not "
              f"timed): load_workspace {seconds:.2f} s, peak RSS {peak:.0f} MiB; "
              f"{len(loaded.transactions):,} lines read back.")
    print(f"Peak resident memory of this process (last step): {_rss_mib():.0f} MiB")


def compare_with_lifetimes(lt, summary_data_from_transaction_data, tx, as_of, state,
                           assumptions) -> None:
    """lifetimes on the same log and customers: summary, both fits, CLV."""
    summary = state["summary"]
    bg, gg = state["bg"], state["gg"]
    repeat = value.repeat_customers(summary)
    x, rec, T = (summary[c].to_numpy() for c in ("frequency", "recency", "T"))
    monthly = (1 + assumptions.discount_rate) ** (1 / 12) - 1
    lt_models: dict[str, object] = {}
    notes: list[str] = []

    def lt_fit(key, model, penalizer, *data):
        """As a lifetimes user would: with crmkit's penalizer; when that fails, the fallback."""
        try:
            lt_models[key] = model(penalizer_coef=penalizer).fit(*data)
        except lt.utils.ConvergenceError:
            notes.append(f"lifetimes' {model.__name__} did not converge with penalizer "
                         f"{penalizer}; its time includes the retry with "
                         f"{valuation.FALLBACK_PENALIZER}, whose estimates are shown.")
            lt_models[key] = model(penalizer_coef=valuation.FALLBACK_PENALIZER).fit(*data)

    def lt_bg():
        lt_fit("bg", lt.BetaGeoFitter, bg.penalizer_, x, rec, T)

    def lt_gg():
        lt_fit("gg", lt.GammaGammaFitter, gg.penalizer_, repeat["frequency"].to_numpy(),
               repeat["monetary_value"].to_numpy())

    pairs = [
        ("summary", lambda: value.summarise(tx, observation_period_end=as_of),
         lambda: summary_data_from_transaction_data(tx, "customer_id", "date",
                                                    monetary_value_col="amount",
                                                    observation_period_end=as_of)),
        ("BG/NBD fit", lambda: valuation.fit_with_fallback(
            value.BetaGeo(), summary["frequency"], summary["recency"], summary["T"]), lt_bg),
        ("Gamma-Gamma fit", lambda: valuation.fit_with_fallback(
            value.GammaGamma(), repeat["frequency"], repeat["monetary_value"]), lt_gg),
        (f"CLV {assumptions.horizon_months} months",
         lambda: value.customer_lifetime_value(
             bg, gg, summary["frequency"], summary["recency"], summary["T"],
             summary["monetary_value"], time=assumptions.horizon_months, margin=1.0,
             discount_rate=assumptions.discount_rate),
         lambda: lt_models["gg"].customer_lifetime_value(
             lt_models["bg"], summary["frequency"], summary["recency"], summary["T"],
             summary["monetary_value"], time=assumptions.horizon_months,
             discount_rate=monthly, freq="D")),
    ]
    header = f"{'same work':<34}{'crmkit s':>9}{'lifetimes s':>13}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    for name, ours, theirs in pairs:
        ours_s, _, _ = timed(ours)
        theirs_s, _, _ = timed(theirs)
        print(f"{name:<34}{ours_s:>9.2f}{theirs_s:>13.2f}{ours_s / theirs_s:>8.3f}", flush=True)
    print("ratio = crmkit / lifetimes (below 1: crmkit is faster); lifetimes fitted with the "
          "penalizer crmkit used.")
    for note in dict.fromkeys(notes):
        print(note)
    estimates = pd.DataFrame({
        "crmkit": {**bg.params.to_dict(), **gg.params.to_dict()},
        "lifetimes": {**lt_models["bg"].params_.to_dict(),
                      **lt_models["gg"].params_.rename({"v": "gamma"}).to_dict()}})
    print("Parameter estimates (alpha in days):")
    print(estimates.round(4).to_string())


if __name__ == "__main__":
    main()
