"""Property-based fuzzing of the pipeline-file reader: whatever the text, descpipe answers with a
UserError (exit status 2 and a message) or a loaded pipeline, never another exception."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from conftest import TESTS, descpipe
from descpipe.errors import UserError
from descpipe.pipeline import load_pipeline

# A fixed seed: CI runs the same examples every time, and a failure found once is found again.
FUZZ_SETTINGS = settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# One copy of the toy stages for every example: loading never writes into it.
_ROOT = Path(tempfile.mkdtemp(prefix="descpipe-fuzz-"))
shutil.copytree(TESTS / "stages", _ROOT / "stages")
shutil.copytree(TESTS / "pipelines", _ROOT / "pipelines")
VALID = YAML(typ="safe", pure=True).load((TESTS / "pipelines/fan.yaml").read_text())

scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["split", "numbers", "sum.yaml", "../stages",
                                                           "-", "a.b", "", "combine", "[", "{x: 1}"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=10)


def load_or_user_error(text: str) -> None:
    path = _ROOT / "pipelines" / "fuzzed.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_pipeline(path)
    except UserError as e:
        assert str(e).startswith(str(path)), str(e)


@pytest.mark.parametrize("text, says", [
    # No runtime section, so no line to name: the file alone.
    ("pipeline: {images: ../stages, stages: split}\n", ": no stage makes 'numbers'"),
    ("pipeline: {images: ../stages, stages: split, <<: {bogus: 1}}\n", ":1: unknown key 'bogus' in 'pipeline'"),
    ("pipeline: {<<: {images: ../stages, stages: split, bogus: 1}}\n", ":1: unknown key 'bogus' in 'pipeline'"),
])
def test_keys_without_a_line_of_their_own_still_give_a_user_error(text, says):
    path = _ROOT / "pipelines" / "fuzzed.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as error:
        load_pipeline(path)
    assert str(error.value).startswith(f"{path}{says}"), str(error.value)


@FUZZ_SETTINGS
@given(st.text(max_size=300))
def test_random_text_never_crashes(text):
    load_or_user_error(text)


def paths(node, prefix=()):
    """Every (path) to a value inside a nested dict/list."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, prefix + (index,))


ALL_PATHS = [p for p in paths(VALID) if p]


def mutate(document, path, new_value, delete):
    import copy

    result = copy.deepcopy(document)
    parent = result
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new_value
    return result


@FUZZ_SETTINGS
@given(st.lists(st.tuples(st.sampled_from(ALL_PATHS), values, st.booleans()), min_size=1, max_size=3))
def test_mutated_valid_pipeline_never_crashes(mutations):
    document = VALID
    for path, new_value, delete in mutations:
        try:
            document = mutate(document, path, new_value, delete)
        except (KeyError, IndexError, TypeError):
            continue   # an earlier mutation removed this path
    stream = __import__("io").StringIO()
    YAML(typ="safe", pure=True).dump(document, stream)
    load_or_user_error(stream.getvalue())


@pytest.mark.parametrize("text", ["pipeline: [", "\x00", "pipeline:\n  stages: [split, split]\n", "- a\n- b\n",
                                  "pipeline: {images: ../stages, stages: split}\nsplit: 3\n"])
def test_command_line_answers_fuzz_findings_with_status_2(tmp_path, text):
    (tmp_path / "p.yaml").write_text(text)
    result = descpipe("validate", tmp_path / "p.yaml")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
