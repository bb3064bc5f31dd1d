"""Big clients: the fast paths taken for a million customers give what the exact ones give.

Each speed-up of issue 16 ("big clients") is checked on a small case against the path it
short-cuts, or against an oracle written here: pyarrow's CSV reader against pandas' parser,
plain ISO dates sliced against the regular expressions, the target-list CSV against a value by
value writer, the capped sheet of ``tables.xlsx`` against the whole table, the cache's stat check
against a changed file, and the silhouette chart saying its sample.
"""

from __future__ import annotations

import codecs
import os
import time

import numpy as np
import openpyxl
import pandas as pd
import pytest

from crmkit.analysis import clustering
from crmkit.core.i18n import Formatter
from crmkit.delivery import exports
from crmkit.delivery.charts.segments import silhouette_chart
from crmkit.delivery.tables import Table
from crmkit.inputs import cache, tabular
from crmkit.inputs.workspace import load_workspace

# --------------------------------------------------------------------------------------------
# CSV text to columns: pyarrow where it is exact, pandas' parser and the csv module elsewhere

CSV_CASES = {
    "plain": b"id,date,amount\nC1,2024-01-05,10.5\nC2,2024-02-01,3\n",
    "quoted separators and doubled quotes": (b'id;name;amount\nC1;"Smith; Ana";"1.234,50"\n'
                                             b'C2;"say ""hi""";7\n'),
    "crlf and bom": codecs.BOM_UTF8 + b"id,amount\r\nC1,1\r\nC2,2\r\n",
    "empty cells and spaces": b"id,a,b\nC1,, x \nC2,  ,\n",
    "blank lines": b"id,a\nC1,1\n\nC2,2\n   \nC3,3\n",
    "quoted line break": b'id,note\nC1,"two\nlines"\nC2,one\n',
    "ragged rows": b"id,a\nC1,1,extra\nC2,2\n",
    "latin-1": "id;nombre\nC1;Peña\nC2;Muñoz\n".encode("cp1252"),
    "tabs": b"id\tamount\nC1\t1.5\nC2\t2\n",
    "header only": b"id,amount\n",
    "formula-looking text": b"id,name\nC1,=1+1\nC2,-3\n",
}


def _read_both(path):
    fast = tabular.read_table(path)
    original = tabular._split_by_arrow
    tabular._split_by_arrow = lambda *args: None
    try:
        slow = tabular.read_table(path)
    finally:
        tabular._split_by_arrow = original
    return fast, slow


@pytest.mark.parametrize("case", list(CSV_CASES))
def test_arrow_split_gives_what_pandas_gives(tmp_path, case):
    path = tmp_path / "t.csv"
    path.write_bytes(CSV_CASES[case])
    fast, slow = _read_both(path)
    assert fast.header == slow.header
    assert fast.lines.tolist() == slow.lines.tolist()
    assert fast.dialect == slow.dialect
    pd.testing.assert_frame_equal(fast.data, slow.data)
    assert [p.render() if hasattr(p, "render") else str(p) for p in fast.problems] == \
        [p.render() if hasattr(p, "render") else str(p) for p in slow.problems]


def test_arrow_split_is_taken_for_a_plain_export_and_left_for_blank_lines():
    def split(raw: bytes, lines: int):
        return tabular._split_by_arrow(tabular._Bytes.trimmed(raw), ",", lines)

    plain = split(b"id,a\nC1,1\nC2,\n", 3)
    assert plain is not None
    assert plain[0].tolist() == ["id", "C1", "C2"]
    assert plain[1].tolist() == ["a", "1", ""]  # an empty cell is "", never missing
    assert str(plain[1].dtype) == "str"
    assert split(b"id,a\nC1,1\n\nC2,2", 4) is None  # blank line
    assert split(b"id,a\nC1,1,2\nC2,2", 3) is None  # ragged row


# --------------------------------------------------------------------------------------------
# Dates

DATE_CASES = [
    ["2024-03-05", "", " ", "1999-12-31", "2024-02-30"],  # blanks and an impossible date
    ["2024-03-05", "2024-3-5"],
    ["2024-03-05 10:00", "2024-01-01"],
    ["05/03/2024", "2024-01-01"],
    ["2024-03-0x", "2024-01-01"],
    ["\uff12\uff10\uff12\uff14-03-05"],  # full-width digits are not dates
    ["", ""],
]


@pytest.mark.parametrize("values", DATE_CASES)
def test_plain_iso_dates_are_read_as_the_regular_expressions_read_them(values, monkeypatch):
    series = pd.Series(values, dtype="str")
    fast = tabular.DateParts.of(series)
    monkeypatch.setattr(tabular, "_plain_iso", lambda *args: None)
    slow = tabular.DateParts.of(series)
    assert fast.evidence().iso == slow.evidence().iso
    assert fast.evidence().numeric == slow.evidence().numeric
    for order in ("iso", "dayfirst", "monthfirst", "yyyymmdd", None):
        fast_dates, fast_bad = fast.assemble(order)
        slow_dates, slow_bad = slow.assemble(order)
        pd.testing.assert_series_equal(fast_dates, slow_dates)
        assert fast_bad.tolist() == slow_bad.tolist()


def test_plain_iso_dates_take_the_slicing_path():
    arr = tabular._arrow(pd.Series(["2024-03-05", "", "1999-12-31"], dtype="str"))
    parts = tabular._plain_iso(arr, tabular._blank(arr))
    assert parts is not None
    y, m, d = parts
    assert y[[0, 2]].tolist() == [2024, 1999] and np.isnan(y[1])
    assert m[[0, 2]].tolist() == [3, 12] and d[[0, 2]].tolist() == [5, 31]
    other = tabular._arrow(pd.Series(["2024-03-05", "05/03/2024"], dtype="str"))
    assert tabular._plain_iso(other, tabular._blank(other)) is None


# --------------------------------------------------------------------------------------------
# Target lists and tables.xlsx


def _oracle_csv(path, frame, sep=",", decimal="."):
    """write_csv as it was: every non-numeric value through _csv_text, one by one."""
    out = frame.copy()
    out.columns = [exports.neutralise(str(c)) for c in out.columns]
    for column in out.columns:
        series = out[column]
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_datetime64_any_dtype(series):
            continue
        out[column] = series.astype(object).map(exports._csv_text)
    out.to_csv(path, sep=sep, decimal=decimal, encoding="utf-8-sig", index=False,
               lineterminator="\r\n")


def _list_frame(n=3_000, seed=3):
    rng = np.random.default_rng(seed)
    ids = [f"C{i:05d}" for i in range(n)]
    ids[7] = "=HYPERLINK(\"http://x\",\"y\")"
    ids[8] = "-42"
    ids[9] = "@sum"
    segment = rng.choice(["Loyal", "New", "=bad", "Lapsing"], n).tolist()
    segment[11] = None
    return pd.DataFrame({
        "customer": pd.Series(ids, dtype="str"),
        "segment": pd.Series(segment, dtype="str"),
        "band": pd.Categorical(rng.choice(["a", "+b"], n)),
        "mixed": pd.Series([1, "x", None, True, 2.5] * (n // 5), dtype=object),
        "amount": rng.gamma(2, 30, n).round(2),
        "date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 90, n), "D"),
    })


@pytest.mark.parametrize("sep,decimal", [(",", "."), (";", ",")])
def test_target_list_csv_is_the_value_by_value_one(tmp_path, sep, decimal):
    frame = _list_frame()
    exports.write_csv(tmp_path / "fast.csv", frame, sep=sep, decimal=decimal)
    _oracle_csv(tmp_path / "oracle.csv", frame, sep=sep, decimal=decimal)
    fast = (tmp_path / "fast.csv").read_bytes()
    assert fast.startswith(codecs.BOM_UTF8)
    assert fast == (tmp_path / "oracle.csv").read_bytes()
    assert b"'=HYPERLINK" in fast and b"'-42" in fast and b"'=bad" in fast


def _plain_frame(n=2_000, seed=5):
    """The columns a target list holds, with every character the csv module quotes for."""
    rng = np.random.default_rng(seed)
    texts = ["Loyal", "a;b", "a,b", 'say "hi"', "line\nbreak", "cr\rhere", "", " spaced ",
             "ñandú €", "=SUM(A1)", "-3", "tab\there", None]
    floats = np.concatenate([[np.nan, np.inf, -np.inf, 1e16, 1e-5, -0.0, 0.1, 123456789.123,
                              2.5e-300, 1.7976931348623157e308],
                             rng.normal(0, 1, n - 10) * 10.0 ** rng.integers(-8, 20, n - 10)])
    return pd.DataFrame({
        "customer": pd.Series([f"C{i:05d}" for i in range(n)], dtype="str"),
        "segment": pd.Series(rng.choice(np.array(texts, dtype=object), n), dtype=object),
        "band": pd.Categorical(rng.choice(["a", "+b", "c;d"], n)),
        "count": rng.integers(-10**12, 10**12, n),
        "share": floats,
        "note, with a comma": pd.Series(rng.choice(["x", None, 'q"q'], n), dtype="str"),
    })


@pytest.mark.parametrize("sep,decimal", [(",", "."), (";", ","), ("\t", ".")])
def test_a_csv_of_text_and_numbers_is_written_by_arrow_as_pandas_writes_it(
        tmp_path, monkeypatch, sep, decimal):
    frame = _plain_frame()
    made = []
    fields = exports._arrow_fields
    monkeypatch.setattr(exports, "_arrow_fields",
                        lambda out, sep: made.append(fields(out, sep)) or made[-1])
    monkeypatch.setattr(exports, "_CSV_CHUNK_ROWS", 333)  # several chunks, the last one short
    exports.write_csv(tmp_path / "fast.csv", frame, sep=sep, decimal=decimal)
    assert made and made[0] is not None  # the table went through arrow
    _oracle_csv(tmp_path / "oracle.csv", frame, sep=sep, decimal=decimal)
    assert (tmp_path / "fast.csv").read_bytes() == (tmp_path / "oracle.csv").read_bytes()
    back = pd.read_csv(tmp_path / "fast.csv", sep=sep, encoding="utf-8-sig", dtype=str,
                       keep_default_na=False)
    assert len(back) == len(frame) and back.columns[-1] == "note, with a comma"


def test_a_csv_arrow_cannot_write_exactly_goes_to_pandas(tmp_path):
    assert exports._arrow_fields(pd.DataFrame({"a": ["x"], "d": [pd.Timestamp("2024-01-01")]}),
                                 ",") is None
    assert exports._arrow_fields(pd.DataFrame({"a": ["", "x"]}), ",") is None  # one column
    assert exports._arrow_fields(pd.DataFrame({"a": ["x"], "b": pd.Series([1], dtype=object)}),
                                 ",") is None


def test_map_distinct_is_the_plain_map():
    values = pd.Series(["b", None, "a", "b", "a"], dtype="str")
    calls = []

    def shout(v):
        calls.append(v)
        return v if v is None or v != v else v.upper()

    assert exports._map_distinct(values, shout) == [shout(v) for v in values]
    calls.clear()
    exports._map_distinct(pd.Series(["x"] * 1000 + ["y"] * 1000, dtype="str"), shout)
    assert sorted(calls) == ["x", "y"]  # once per distinct value


def test_map_distinct_maps_a_column_of_dates_once_per_date():
    import datetime as dt

    day, other = dt.date(2027, 10, 1), dt.date(2027, 11, 1)
    values = pd.Series([day] * 1000 + [None, other, dt.datetime(2027, 10, 1)], dtype=object)
    calls = []

    def text(v):
        calls.append(v)
        return None if v is None else v.isoformat()

    assert exports._map_distinct(values, text) == [text(v) for v in values]
    assert exports._map_distinct(values, text)[-1] == "2027-10-01T00:00:00"  # not the date's
    calls.clear()
    exports._map_distinct(pd.Series([day] * 1000 + [other] * 10, dtype=object), text)
    assert sorted(calls) == [day, other]


def test_a_long_sheet_keeps_its_first_rows_and_the_whole_table_goes_to_a_csv(tmp_path,
                                                                              monkeypatch):
    monkeypatch.setattr(exports, "SHEET_ROWS_MAX", 10)
    fmt = Formatter("es", "EUR")
    frame = pd.DataFrame({"customer_id": [f"C{i}" for i in range(25)],
                          "amount": np.arange(25) * 1.5})
    table = Table(frame, fmt, {"customer_id": ("auto_col_customer_id", "text"),
                               "amount": ("revenue", "money")})
    small = Table(frame.head(4), fmt, {"customer_id": ("auto_col_customer_id", "text")})
    path = exports.write_workbook(tmp_path / "tables.xlsx", {"Lista": table, "Corta": small},
                                  fmt)
    book = openpyxl.load_workbook(path)
    rows = list(book["Lista"].iter_rows(values_only=True))
    data = [r for r in rows[1:] if r[0] and str(r[0]).startswith("C")]
    assert [r[0] for r in data] == [f"C{i}" for i in range(10)]
    assert [r[1] for r in data] == [i * 1.5 for i in range(10)]
    note = rows[-1][0]
    assert "10" in note and "25" in note and "tables-Lista.csv" in note
    assert len(list(book["Corta"].iter_rows(values_only=True))) == 5  # header + 4, no note
    # in the language's dialect, as the target lists: a Spanish Excel splits on ";"
    whole = pd.read_csv(tmp_path / "tables-Lista.csv", sep=";", decimal=",",
                        encoding="utf-8-sig")
    assert whole.iloc[:, 0].tolist() == [f"C{i}" for i in range(25)]
    assert whole.iloc[:, 1].tolist() == [i * 1.5 for i in range(25)]
    assert not (tmp_path / "tables-Corta.csv").exists()


# --------------------------------------------------------------------------------------------
# The silhouette chart says its sample


def _rfm(n, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({f: rng.gamma(2, 2, n) for f in clustering.FEATURES},
                        index=[f"C{i}" for i in range(n)])


def test_silhouette_chart_says_the_sample_size_in_both_languages():
    result = clustering.cluster(_rfm(1_500), sample_size=500, k_range=(2, 4))
    assert result.silhouette.attrs == {"sample_size": 500, "customers": 1_500}
    en = silhouette_chart(result.silhouette, Formatter("en", "EUR")).layout.title.subtitle.text
    es = silhouette_chart(result.silhouette, Formatter("es", "EUR")).layout.title.subtitle.text
    assert "500" in en and "1,500" in en and "sample" in en
    assert "500" in es and "1.500" in es and "muestra" in es


def test_silhouette_chart_of_the_whole_base_says_nothing_of_a_sample():
    result = clustering.cluster(_rfm(300), sample_size=10_000, k_range=(2, 3))
    assert result.sample_size == 300
    assert silhouette_chart(result.silhouette, Formatter("en", "EUR")).layout.title.subtitle.text \
        is None


# --------------------------------------------------------------------------------------------
# The run's input cache: a settled file is not hashed again, a changed one is


def test_cache_trusts_a_settled_file_and_hashes_a_changed_one(make_workspace, tmp_path,
                                                              monkeypatch):
    root = make_workspace()
    old = time.time() - 60
    for path in root.iterdir():
        os.utime(path, (old, old))
    ws = load_workspace(root)
    run_dir = tmp_path / "run"
    cache.save(ws, run_dir)

    def no_hashing(path):
        raise AssertionError(f"{path} hashed although its size and time are unchanged")

    with monkeypatch.context() as patch:
        patch.setattr(cache, "_sha256_file", no_hashing)
        again = cache.load(root, run_dir)
    assert again is not None
    assert again.transactions["amount"].tolist() == ws.transactions["amount"].tolist()

    # Same size, same content, a new time: hashed, and still the truth.
    now = time.time()
    os.utime(root / "transactions.csv", (now, now))
    assert cache.load(root, run_dir) is not None
    # Same size, another content, the old time put back: a settled stamp is trusted (as make
    # and rsync trust it); but the same change with a new stamp is caught by the hash.
    text = (root / "transactions.csv").read_text()
    changed = text.replace("1", "2", 1)
    assert len(changed) == len(text) and changed != text
    (root / "transactions.csv").write_text(changed)
    assert cache.load(root, run_dir) is None


def test_cache_hashes_a_file_written_just_before_the_run(make_workspace, tmp_path, monkeypatch):
    root = make_workspace()  # just written: its stamp may repeat on a coarse clock
    ws = load_workspace(root)
    cache.save(ws, tmp_path / "run")
    hashed = []
    original = cache._sha256_file
    monkeypatch.setattr(cache, "_sha256_file", lambda p: hashed.append(p.name) or original(p))
    assert cache.load(root, tmp_path / "run") is not None
    assert "transactions.csv" in hashed
