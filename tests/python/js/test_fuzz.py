"""Property tests: random Python values through Python -> JS -> Python, and random JS values
(built in JS from random recipes, and random JS source snippets) through JS -> Python.

The round-trip rules checked are the documented ones (docs/js.md: jsrun 0.3.0's, with tether's
fixes): ints within +-2^53 stay numbers and every other int becomes a BigInt, so every int comes
back exact; floats come back equal (NaN as NaN; integral floats as ints); bytes come back as
bytes; sets as sets; datetimes as UTC-aware datetimes on a whole millisecond within 1 ms; a str with a
lone surrogate is either kept, replaced with U+FFFD or refused with RuntimeError, never a crash.
Runs on tether.js only (jsrun rounds ints above 2^53, a known bug).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the repo
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def trt() -> Iterator[Any]:
    from .conftest import load_backend

    tjs = load_backend("tether")
    runtime = tjs.Runtime()
    yield runtime
    runtime.close()


@pytest.fixture(scope="module")
def echo(trt: Any) -> Any:
    return trt.eval("(v) => v")


ints = st.one_of(
    st.integers(min_value=-(2**53), max_value=2**53),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.integers(),
)
floats = st.floats(allow_nan=True, allow_infinity=True)
text = st.text(alphabet=st.characters(codec=None, exclude_categories=["Cs"]), max_size=40)
surrogate_text = st.text(alphabet=st.characters(), max_size=20)
datetimes = st.datetimes(
    min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31), timezones=st.just(UTC)
)
hashables = st.one_of(st.booleans(), ints, text)
scalars = st.one_of(st.none(), st.booleans(), ints, floats, text, st.binary(max_size=64), datetimes)
values = st.recursive(
    scalars | st.sets(hashables, max_size=5),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(text, children, max_size=5),
    max_leaves=30,
)


def expected(value: Any) -> Any:
    """What the documented conversion gives back for `value`."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) <= 2**63:
            return int(value) if abs(value) < 2**63 else (2**63 - 1 if value > 0 else -(2**63))
        return value
    if isinstance(value, dt.datetime):  # compared within 1 ms by same()
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, list):
        return [expected(v) for v in value]
    if isinstance(value, dict):
        return {k: expected(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return {expected(v) for v in value}
    return value


def same(got: Any, want: Any) -> bool:
    if isinstance(want, dt.datetime):  # JS Dates hold whole ms (rounded through a float, as jsrun)
        return (
            isinstance(got, dt.datetime)
            and got.utcoffset() == dt.timedelta(0)
            and got.microsecond % 1000 == 0
            and abs(got - want) <= dt.timedelta(milliseconds=1)
        )
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(same, got, want))
    if isinstance(want, dict):
        return (
            isinstance(got, dict)
            and got.keys() == want.keys()
            and all(same(got[k], want[k]) for k in want)
        )
    if type(want) is int and type(got) is bool:
        return False
    return got == want and (type(got) is type(want) or isinstance(want, float))


@SETTINGS
@given(values)
def test_python_js_python_round_trip(echo: Any, value: Any) -> None:
    got = echo(value)
    assert same(got, expected(value)), (value, got)


@SETTINGS
@given(ints)
def test_int_round_trip_exact(echo: Any, trt: Any, value: int) -> None:
    assert echo(value) == value
    kind = trt.eval("(v) => typeof v")(value)
    assert kind == ("number" if abs(value) <= 2**53 else "bigint")


@SETTINGS
@given(surrogate_text)
def test_strings_with_surrogates_never_crash(echo: Any, value: str) -> None:
    try:
        got = echo(value)
    except RuntimeError:
        assert any(0xD800 <= ord(c) <= 0xDFFF for c in value)
        return
    assert isinstance(got, str)
    fixed = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
    assert got in (value, fixed)


@SETTINGS
@given(datetimes)
def test_naive_datetime_is_utc(echo: Any, value: dt.datetime) -> None:
    naive = value.replace(tzinfo=None)
    assert same(echo(naive), value)


# --- JS -> Python: random values built in JS ----------------------------------------------------

js_leaf = st.one_of(
    st.just("null"),
    st.just("undefined"),
    st.just("true"),
    st.integers(-(2**60), 2**60).map(str),
    st.integers().map(lambda n: f"{n}n"),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "-0", "1e300", "5e-324"]),
    text.map(lambda s: repr(s).replace("\\x", "\\u00")),
    st.sampled_from(
        [
            "new Date(0)",
            "new Date(8.64e15)",
            "new Uint8Array([1,2,3])",
            "new Set([1,'a'])",
            "new Map([[1,2]])",
            "/re/g",
            "new Error('e')",
            "(() => 1)",
            "new Float32Array([0.5])",
            "[1,,3]",
            "'\\ud800'",
            "Object.create(null)",
        ]
    ),
)
js_values = st.recursive(
    js_leaf,
    lambda children: (
        st.lists(children, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]")
        | st.dictionaries(
            st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True), children, max_size=4
        ).map(lambda d: "({" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "})")
    ),
    max_leaves=20,
)


@SETTINGS
@given(js_values)
def test_random_js_values_convert(trt: Any, source: str) -> None:
    value = _eval_or_out_of_range(trt, source)
    again = trt.eval(f"JSON.stringify({source}, (k, v) => typeof v === 'bigint' ? 0 : v)")
    assert isinstance(again, (str, type(trt.eval("undefined"))))
    _check_types(value)


def _eval_or_out_of_range(trt: Any, source: str) -> Any:
    """A JS Date beyond Python's years 1..9999 is a RuntimeError "Date value out of range"."""
    try:
        return trt.eval(source)
    except RuntimeError as exc:
        assert "Date value out of range" in str(exc), exc
        assert "8.64e15" in source
        assume(False)


def _check_types(value: Any) -> None:
    from .conftest import load_backend

    tjs = load_backend("tether")
    allowed = (
        type(None),
        bool,
        int,
        float,
        str,
        bytes,
        dt.datetime,
        tjs.JsFunction,
        tjs.JsUndefined,
    )
    if isinstance(value, list):
        for v in value:
            _check_types(v)
    elif isinstance(value, dict):
        assert all(isinstance(k, str) for k in value)
        for v in value.values():
            _check_types(v)
    elif isinstance(value, set):
        for v in value:
            _check_types(v)
    else:
        assert isinstance(value, allowed), type(value)


@SETTINGS
@given(js_values)
def test_js_values_survive_a_second_trip(trt: Any, source: str) -> None:
    """JS -> Python -> JS -> Python is stable after the first conversion."""
    first = _eval_or_out_of_range(trt, source)
    assume(not _has_function(first))
    echo = trt.eval("(v) => v")
    assert same(echo(first), expected(first))


def _has_function(value: Any) -> bool:
    if isinstance(value, list):
        return any(map(_has_function, value))
    if isinstance(value, dict):
        return any(map(_has_function, value.values()))
    return callable(value)


# --- random JS source snippets -----------------------------------------------------------------

tokens = st.sampled_from(
    [
        "1",
        "'a'",
        "x",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        "+",
        "-",
        "*",
        "/",
        "=>",
        ",",
        ";",
        ".",
        "let",
        "const",
        "function",
        "return",
        "new",
        "class",
        "async",
        "await",
        "yield",
        "try",
        "catch",
        "throw",
        "null",
        "undefined",
        "this",
        "typeof",
        "?",
        ":",
        "=",
        "==",
        "`",
        "${",
        "Symbol()",
        "Promise",
        "import",
        "export",
        "\\",
        "'\\ud800'",
        "10n",
        "0x",
        "/re/",
    ]
)


@SETTINGS
@given(st.lists(tokens, max_size=15).map(" ".join))
def test_random_snippets_never_crash(trt: Any, source: str) -> None:
    from .conftest import load_backend

    tjs = load_backend("tether")
    try:
        value = trt.eval(source)
    except tjs.JavaScriptError as exc:
        assert isinstance(exc.message, str)
        assert isinstance(exc.frames, list)
    except RuntimeError as exc:  # conversion refusals (Symbol, ...) and limits
        assert str(exc)
    else:
        _check_types(value) if not isinstance(value, set) else None
    assert trt.eval("1 + 1") == 2
