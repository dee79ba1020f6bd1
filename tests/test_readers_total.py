"""Every reader is total: whatever bytes a user gives descpipe (a data file, a pipeline file, a run
record, an output path), it answers with a result or one line, in bounded time, never a traceback."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, TESTS, copy_checkout, descpipe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from descpipe.errors import UserError
from descpipe.filetypes import FILE_TYPES, FitsError, file_type, fits_columns, fits_headers

fitsio = pytest.importorskip("fitsio", reason="the science extra installs it")
np = pytest.importorskip("numpy")

FUZZ = settings(derandomize=True, max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
BOUND = 5.0   # seconds any one read may take, on a slow shared machine
ENV = {"PYTHONPATH": str(REPO)}   # stages import this checkout's descpipe


def descpipe_within(*args: object, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """`descpipe` as conftest runs it, but a hang fails the test (TimeoutExpired) instead of the suite."""
    return subprocess.run([sys.executable, "-m", "descpipe", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **ENV})


def card(key: str, value: object = None, raw: str | None = None) -> bytes:
    if raw is not None:
        return raw.ljust(80)[:80].encode()
    text = f"'{value}'" if isinstance(value, str) else "T" if value is True else str(value)
    return f"{key:<8}= {text:>20}".ljust(80)[:80].encode()


def header(*cards: bytes) -> bytes:
    body = b"".join(cards) + b"END".ljust(80)
    return body.ljust(-(-len(body) // 2880) * 2880, b" ")


PRIMARY = header(card("SIMPLE", True), card("BITPIX", 8), card("NAXIS", 0), card("EXTEND", True))


def table(*extra: bytes, naxis1: object = 8, naxis2: object = 2, tfields: object = 1) -> bytes:
    cards = [card("XTENSION", "BINTABLE"), card("BITPIX", 8), card("NAXIS", 2), card("NAXIS1", naxis1),
             card("NAXIS2", naxis2), card("PCOUNT", 0), card("GCOUNT", 1), card("TFIELDS", tfields),
             card("TTYPE1", "Z"), card("TFORM1", "D"), *extra]
    return header(*cards) + b"\0" * 2880


# (case, the file's bytes, what the one line says)
FITS_CASES = [
    ("0-byte file", b"", "not a FITS file: it is empty"),
    ("negative NAXIS1", PRIMARY + table(naxis1=-8), "NAXIS1 = -8, which FITS does not allow"),
    ("negative NAXIS2 in the primary", header(card("SIMPLE", True), card("BITPIX", 8), card("NAXIS", 2),
                                             card("NAXIS1", 1), card("NAXIS2", -5)), "NAXIS2 = -5"),
    ("absurd NAXIS1", PRIMARY + table(naxis1=10 ** 60), "NAXIS1 = 1" + "0" * 60 + ", which FITS does not allow"),
    ("huge NAXIS", header(card("SIMPLE", True), card("BITPIX", 8), card("NAXIS", 10 ** 9)),
     "NAXIS = 1000000000, which FITS does not allow"),
    ("NAXIS1 not a number", PRIMARY + table(naxis1="wide"), "NAXIS1 = 'wide', not a whole number"),
    ("odd BITPIX", header(card("SIMPLE", True), card("BITPIX", 7), card("NAXIS", 0)), "BITPIX = 7"),
    ("no BITPIX card", header(card("SIMPLE", True), card("NAXIS", 0)), "HDU 0 has no BITPIX card"),
    ("odd cards", PRIMARY + table(card("", raw="=" * 80), card("", raw="HIERARCH"), card("", raw="CONTINUE  '&'"),
                                  card("", raw="TTYPE2  = 'unclosed"), naxis1="1.5"), "NAXIS1 = '1.5'"),
    ("missing HDU 1", PRIMARY, "no HDU 1: the file has only 1"),
    ("huge TFIELDS", PRIMARY + table(tfields=10 ** 30), "TFIELDS = 1000000000000000000000000000000"),
]


@pytest.fixture
def reader(tmp_path):
    """A one-stage pipeline whose stage reads `data` (a FITS catalog with a column Z, by default)."""
    def make(kind: str = "fits", name: str = "data.fits") -> Path:
        stage = tmp_path / "images/read"
        stage.mkdir(parents=True, exist_ok=True)
        (stage / "Dockerfile").write_text("FROM python:3.11-slim\n")
        columns = '    columns = {"data": ["Z"]}\n' if kind == "fits" else ""
        (stage / "run.py").write_text(
            f'import descpipe\n\n\nclass Stage(descpipe.Stage):\n    """Read a file."""\n\n'
            f'    inputs = {{"data": "{kind}"}}\n    outputs = {{"n": "txt"}}\n{columns}\n'
            f'    def run(self):\n        open(self.get_output_path("n"), "w").write("1\\n")\n\n\n'
            f'if __name__ == "__main__":\n    Stage.main()\n')
        (tmp_path / "p.yaml").write_text(f"pipeline: {{images: [images], stages: [read]}}\n"
                                         f"runtime:\n  inputs:\n    data: {name}\n")
        return tmp_path
    return make


def one_line(result: subprocess.CompletedProcess, status: int = 2) -> str:
    assert result.returncode == status, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("case, content, says", FITS_CASES, ids=[c[0] for c in FITS_CASES])
def test_odd_fits_input_is_one_line_in_validate_and_in_the_stage(reader, case, content, says):
    root = reader()
    (root / "data.fits").write_bytes(content)
    line = one_line(descpipe_within("validate", "p.yaml", cwd=root, timeout=30))
    assert line.startswith("descpipe: error: p.yaml:4: input 'data': data.fits") and says in line, line
    # The stage's own input check, run as the engine runs it: the same reader, exit 1, one line.
    stage = subprocess.run([sys.executable, "images/read/run.py", "--data", "data.fits", "--n", "n.txt"],
                           cwd=root, capture_output=True, text=True, timeout=30, env={**os.environ, **ENV})
    assert says in one_line(stage, 1)
    assert not (root / "n.txt").exists()


def test_fits_cut_after_a_negative_axis_does_not_walk_backwards(tmp_path):
    # NAXIS1 = -1 once made the walker seek back to the same header forever.
    (tmp_path / "x.fits").write_bytes(PRIMARY + table(naxis1=-1))
    started = time.monotonic()
    assert "NAXIS1 = -1" in file_type("fits").problem(tmp_path / "x.fits")
    assert time.monotonic() - started < BOUND


def test_huge_sparse_fits_is_walked_without_reading_its_data(tmp_path):
    """10 GB of data (a sparse file) is seeked over: time goes with the headers, not the data."""
    data = 10 * 2880 ** 3 // 2880 * 2880
    path = tmp_path / "big.fits"
    with open(path, "wb") as f:
        f.write(PRIMARY + table(naxis1=data // 2, naxis2=2)[:2880])
        f.truncate(len(PRIMARY) + 2880 + data)
    started = time.monotonic()
    assert file_type("fits").problem(path) is None
    assert fits_columns(path) == ["Z"]
    assert time.monotonic() - started < BOUND


# --- The pipeline loader ------------------------------------------------------------------------

def billion_laughs(levels: int = 9) -> str:
    lines = ['    labels: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"    x{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


# (case, how to change tests/pipelines/fan.yaml's folder, where, what the one line says)
LOADER_CASES = [
    ("pipeline file is a FIFO", lambda root: (root / "fan.yaml").unlink() or os.mkfifo(root / "fan.yaml"),
     "fan.yaml: ", "not a regular file"),
    ("alias bomb as a parameter's value", lambda root: edit(root / "fan.yaml", "  parameters: {labels: [twos, ones]}\n",
                                                            "  parameters:\n" + billion_laughs()),
     "fan.yaml:27: ", "aliases copy more than 1000000 values"),
    ("alias inside itself", lambda root: edit(root / "fan.yaml", "{labels: [twos, ones]}", "{labels: &a [twos, *a]}"),
     "fan.yaml:21: ", "alias *a is inside the node it names"),
    ("deeply nested parameter", lambda root: edit(root / "fan.yaml", "{labels: [twos, ones]}",
                                                  "{labels: " + "[" * 100_000 + "]" * 100_000 + "}"),
     "fan.yaml:21: ", "nested more than 100 levels deep"),
    ("deeply nested block mapping", lambda root: (root / "fan.yaml").write_text(
        "".join(" " * i + f"k{i}:\n" for i in range(2000))), "fan.yaml:101: ", "nested more than 100 levels deep"),
    ("deeply nested YAML config file", lambda root: (root / "sum.yaml").write_text("a: " + "[" * 50_000),
     "fan.yaml:15: ", "config file 'config' of stage 'sum_evens'"),
]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"fixture changed: {old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("case, change, where, says", LOADER_CASES, ids=[c[0] for c in LOADER_CASES])
def test_hostile_pipeline_files_give_one_line(tmp_path, case, change, where, says):
    root = copy_checkout(tmp_path, "tests/stages", "tests/pipelines") / "tests/pipelines"
    change(root)
    started = time.monotonic()
    line = one_line(descpipe_within("validate", "fan.yaml", cwd=root, timeout=60))
    assert time.monotonic() - started < 30
    assert line.startswith(f"descpipe: error: {where}") and says in line, line


@pytest.mark.parametrize("kind, content, says", [
    ("json", b"[" * 100_000 + b"]" * 100_000, "not usable JSON: nested too deeply"),
    ("yaml", b"a: " + b"{x: " * 100_000, "nested more than 100 levels deep"),
    ("yaml", billion_laughs().encode(), "aliases copy more than"),
], ids=["deep JSON", "deep YAML", "YAML alias bomb"])
def test_deep_or_exploding_inputs_of_other_types_give_one_line(reader, kind, content, says):
    root = reader(kind, f"data.{kind}")
    (root / f"data.{kind}").write_bytes(content)
    assert says in one_line(descpipe_within("validate", "p.yaml", cwd=root, timeout=60))


# --- Run records --------------------------------------------------------------------------------

GOOD_RECORD = {"pipeline": "p", "status": "succeeded", "exit_status": 0, "started": "t0", "finished": "t1",
               "descpipe": "0", "engine": "cwltool", "container": None,
               "pipeline_file": {"path": "/p.yaml", "checksum": "sha1$0"}, "files": ["wf.cwl"],
               "stages": {"s": {"status": "ran", "exit_status": 0, "started": "t0", "finished": "t1",
                                "image": None, "image_id": None, "parameters": {"a": 1},
                                "code": {"path": "/s", "files": {"run.py": "sha1$1"}}}},
               "inputs": {}, "outputs": {"o": {"path": "/o", "size": 1, "checksum": "sha1$2"}}}

RECORD_CASES = [
    ("a list, not an object", "[]", "not a JSON object"),
    ("a number", "7", "not a JSON object"),
    ("deeply nested", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("missing a key", json.dumps({k: v for k, v in GOOD_RECORD.items() if k != "engine"}), "no 'engine'"),
    ("stages a list", json.dumps({**GOOD_RECORD, "stages": ["s"]}), "wrong type"),
    ("a stage a string", json.dumps({**GOOD_RECORD, "stages": {"s": "ran"}}), "wrong type"),
    ("files not a list of text", json.dumps({**GOOD_RECORD, "files": [1, 2]}), "wrong type"),
    ("outputs null", json.dumps({**GOOD_RECORD, "outputs": None}), "wrong type"),
    ("parts of the wrong shape", json.dumps({**GOOD_RECORD, "stages": {"s": {**GOOD_RECORD["stages"]["s"],
                                                                            "parts": [{"status": []}]}}}), "wrong type"),
]


@pytest.mark.parametrize("case, text, says", RECORD_CASES, ids=[c[0] for c in RECORD_CASES])
def test_odd_run_records_give_one_line(tmp_path, case, text, says):
    (tmp_path / "provenance").mkdir()
    (tmp_path / "provenance/run-record.json").write_text(text)
    line = one_line(descpipe_within("provenance", tmp_path, cwd=tmp_path, timeout=30))
    assert line.startswith(f"descpipe: error: {tmp_path}/provenance/run-record.json: ") and says in line, line


def test_a_whole_record_is_still_summarised(tmp_path):
    """The control for the table above: its records are GOOD_RECORD spoiled one way each."""
    (tmp_path / "run-record.json").write_text(json.dumps(GOOD_RECORD))
    result = descpipe("provenance", tmp_path)
    assert result.returncode == 0 and "p: succeeded (exit status 0)" in result.stdout, result.stderr


# --- Output paths -------------------------------------------------------------------------------

def device(path: Path) -> Path:
    """A character device like /dev/null (where mknod is allowed), else a FIFO: neither is a file."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except OSError:
        os.mkfifo(path)
    return path


def not_a_file(path: Path) -> bool:
    return stat.S_ISCHR(path.lstat().st_mode) or stat.S_ISFIFO(path.lstat().st_mode)


OUTPUT_CASES = [
    ("graph onto a folder", "graph", "d.dot", lambda t: (t / "d.dot").mkdir(), "it is a folder"),
    ("graph onto a device", "graph", "dev.dot", lambda t: device(t / "dev.dot"), "a device, FIFO or socket"),
    ("graph onto a FIFO", "graph", "f.dot", lambda t: os.mkfifo(t / "f.dot"), "a device, FIFO or socket"),
    ("export onto a device", "export", "dev.cwl", lambda t: device(t / "dev.cwl"), "a device, FIFO or socket"),
    ("export onto a link to a device", "export", "link.cwl",
     lambda t: (t / "link.cwl").symlink_to(device(t / "dev")), "a link to a device, FIFO or socket"),
    ("export onto a FIFO", "export", "f.cwl", lambda t: os.mkfifo(t / "f.cwl"), "a device, FIFO or socket"),
    ("export into /proc", "export", "/proc/descpipe-x.cwl", lambda t: None, "cannot write /proc/descpipe-x.cwl: "),
]


@pytest.mark.parametrize("case, command, target, make, says", OUTPUT_CASES, ids=[c[0] for c in OUTPUT_CASES])
def test_output_paths_that_are_not_files_give_one_line_and_stay(tmp_path, case, command, target, make, says):
    root = copy_checkout(tmp_path, "tests/stages", "tests/pipelines") / "tests/pipelines"
    make(root)
    before = {p.name: (p.lstat().st_mode, p.read_bytes() if p.is_file() else None) for p in root.iterdir()}
    line = one_line(descpipe_within(command, "fan.yaml", "-o", target, cwd=root, timeout=60))
    assert line.startswith("descpipe: error: ") and says in line, line
    after = {p.name: (p.lstat().st_mode, p.read_bytes() if p.is_file() else None) for p in root.iterdir()}
    assert after == before
    if not target.startswith("/") and (root / target).exists() and not (root / target).is_dir():
        assert not_a_file(root / target) or (root / target).is_symlink()


# --- Fuzzing each reader ------------------------------------------------------------------------

def timed(read, *args):
    started = time.monotonic()
    result = read(*args)
    assert time.monotonic() - started < BOUND, f"{read.__name__} took {time.monotonic() - started:.1f} s"
    return result


values = st.one_of(st.integers(-10 ** 80, 10 ** 80), st.sampled_from(["-1", "0", "1e3", "'x/y'", "''", "T", "", "&"]),
                   st.text(alphabet="0123456789-+ .'/&EDxT=", max_size=30))
keywords = st.sampled_from(["SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "PCOUNT", "GCOUNT",
                            "TFIELDS", "TTYPE1", "GROUPS", "XTENSION", "CONTINUE", "HIERARCH A B", "END", "COMMENT"])
cards = st.one_of(st.builds(lambda k, v: f"{k:<8}= {v}".encode(), keywords, values),
                  st.binary(max_size=80), st.builds(lambda k: k.encode(), keywords))


def fits_bytes(headers: list[list[bytes]], tail: bytes) -> bytes:
    blocks = [b"".join(c.ljust(80, b" ")[:80] for c in cards_).ljust(2880, b" ") for cards_ in headers]
    return b"SIMPLE  =                    T".ljust(80) + b"".join(blocks)[80:] + tail


@settings(FUZZ, max_examples=250)
@given(st.lists(st.lists(cards, max_size=40), min_size=1, max_size=4), st.binary(max_size=6000))
def test_fuzzed_fits_headers_give_a_result_or_a_problem(tmp_path, headers, tail):
    path = tmp_path / "fuzz.fits"
    path.write_bytes(fits_bytes(headers, tail))
    problem = timed(file_type("fits").problem, path)
    assert problem is None or isinstance(problem, str)
    try:
        timed(fits_columns, path)
    except FitsError:
        pass


@settings(FUZZ, max_examples=150)
@given(st.binary(max_size=9000))
def test_any_bytes_give_each_type_a_result_or_a_problem(tmp_path, content):
    path = tmp_path / "any"
    path.write_bytes(content)
    for kind in FILE_TYPES.values():
        problem = timed(kind.problem, path)
        assert problem is None or isinstance(problem, str)


@settings(derandomize=True, max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 10 ** 6), st.sampled_from([("json", b"[", b"]"), ("json", b'{"a":', b"}"), ("yaml", b"[", b"]"),
                                                 ("yaml", b"- ", b""), ("yaml", b"{a: ", b"}")]))
def test_nesting_of_any_depth_gives_a_result_or_a_problem(tmp_path, depth, shape):
    """Inputs that grow without bound: the depth is drawn up to a million."""
    kind, opening, closing = shape
    path = tmp_path / f"deep.{kind}"
    path.write_bytes(opening * depth + b"1" + closing * depth)
    problem = timed(file_type(kind).problem, path)
    assert problem is None or isinstance(problem, str)
    if depth > 5000:   # beyond what Python's parsers can take: refused, not a RecursionError
        assert problem


@settings(derandomize=True, max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 10 ** 5), st.integers(1, 12))
def test_fits_headers_of_any_length_give_a_result_or_a_problem(tmp_path, blocks, hdus):
    """A header with no END card, or thousands of empty HDUs: bounded by the blocks read."""
    path = tmp_path / "long.fits"
    with open(path, "wb") as f:
        f.write((PRIMARY + table()) * hdus)
        f.write(b"XTENSION= 'IMAGE'".ljust(2880) * min(blocks, 12_000))
    problem = timed(file_type("fits").problem, path)
    assert problem and ("END card" in problem), problem


@FUZZ
@given(st.integers(1, 12), st.integers(1, 12), st.booleans())
def test_fuzzed_alias_bombs_are_refused_or_loaded(tmp_path, levels, width, recursive):
    from descpipe.pipeline import load_pipeline

    root = tmp_path / f"a{levels}-{width}-{recursive}"
    if not root.exists():
        copy_checkout(root, "tests/stages", "tests/pipelines")
    path = root / "tests/pipelines/fan.yaml"
    values_ = [f"    x0: &l0 [{', '.join(['lol'] * width)}]"]
    values_ += [f"    x{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    if recursive:
        values_.append(f"    y: &r [*l{levels}, *r]")
    text = (TESTS / "pipelines/fan.yaml").read_text()
    path.write_text(text.replace("  parameters: {labels: [twos, ones]}\n", "  parameters:\n" + "\n".join(values_) + "\n"))
    try:
        timed(load_pipeline, path)
    except UserError as e:
        assert str(e).startswith(str(path)), str(e)
    else:
        raise AssertionError("a parameter the stage does not have was accepted")


records = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=6)),
                       lambda inner: st.one_of(st.lists(inner, max_size=3),
                                               st.dictionaries(st.sampled_from([*GOOD_RECORD, "x", "path", "parts",
                                                                                "status", "code", "files"]),
                                                               inner, max_size=5)), max_leaves=20)


@FUZZ
@given(records, st.dictionaries(st.sampled_from(list(GOOD_RECORD)), records, max_size=4))
def test_fuzzed_run_records_give_a_summary_or_one_user_error(tmp_path, anything, overrides):
    from descpipe.provenance import load_record, summary

    for value in (anything, {**GOOD_RECORD, **overrides}):
        (tmp_path / "run-record.json").write_text(json.dumps(value))
        try:
            assert isinstance(timed(lambda: summary(*load_record(tmp_path))), str)
        except UserError as e:
            assert "run record" in str(e)


# --- The FITS walker agrees with fitsio ---------------------------------------------------------

def written_by_fitsio(path: Path) -> Path:
    """Odd but valid FITS: a column name and string values with `/` and quotes, long strings in
    CONTINUE cards, HIERARCH keywords, a heap (variable-length arrays), images."""
    cat = np.zeros(4, dtype=[("A/B", "f8"), ("C'D", "i4"), ("S", "U5")])
    hdr = fitsio.FITSHDR([{"name": "LONG", "value": "x/" * 60 + "'end'"},
                          {"name": "SLASH", "value": "a / b", "comment": "c / d"},
                          {"name": "HIERARCH ESO DET CHIP", "value": 7}])
    fitsio.write(path, np.arange(6, dtype="i2").reshape(2, 3), clobber=True)
    fitsio.write(path, cat, header=hdr)
    heap = np.zeros(3, dtype=[("V", "O"), ("N", "i8")])
    for i in range(3):
        heap["V"][i] = np.arange(i * 50, dtype="f8")
    fitsio.write(path, heap)
    fitsio.write(path, np.ones((5, 7, 3), dtype="f8"))
    return path


def test_walker_agrees_with_fitsio_on_odd_valid_files(tmp_path):
    path = written_by_fitsio(tmp_path / "odd.fits")
    ours = fits_headers(path)
    assert file_type("fits").problem(path) is None
    with fitsio.FITS(path) as fits:
        assert len(ours) == len(fits)
        for index, hdu in enumerate(fits):
            theirs = hdu.read_header()
            for key in theirs.keys():   # noqa: SIM118 (a FITSHDR iterates over its records)
                value = theirs[key]
                if key in ("COMMENT", "HISTORY", "") or isinstance(value, float):
                    continue
                expected = ("T" if value else "F") if isinstance(value, bool) else str(value)
                assert ours[index].get(key) == expected, (index, key, ours[index].get(key), value)
        assert fits_columns(path) == list(fits[1].get_colnames()) == ["A/B", "C'D", "S"]


@pytest.mark.parametrize("naxis1", [-(10 ** 6), -(10 ** 9)])
def test_walker_refuses_what_fitsio_refuses(tmp_path, naxis1):
    path = tmp_path / "bad.fits"
    path.write_bytes(PRIMARY + table(naxis1=naxis1))
    assert file_type("fits").problem(path)
    with pytest.raises(Exception), fitsio.FITS(path) as fits:   # noqa: B017 (cfitsio's errors have no one class)
        fits[1].read()
