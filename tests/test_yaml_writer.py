"""descpipe writes its YAML itself (fast, deterministic): ruamel.yaml must read back exactly the data."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from descpipe.yaml_writer import to_yaml_text

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(), st.sampled_from(["yes", "No", "null", "~", "1.0", ".5", "1e3", "0x1F", "#main",
                                               "=$(self)", "$(runtime.cores)", "a: b", "- x", "edam:format_2333",
                                               "line one\nline two\n", " lead\nx", "trail \nx", "\n\n", "x:"]))
keys = st.one_of(st.text(min_size=1), st.sampled_from(["$graph", "class", "tomography.code", "on", "1"]))
documents = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(keys, inner, max_size=4)), max_leaves=25)


@settings(max_examples=400, derandomize=True, deadline=None)
@given(st.dictionaries(keys, documents, max_size=6))
def test_round_trip(data):
    assert YAML(typ="safe", pure=True).load(to_yaml_text(data)) == data


def test_readable_shape():
    text = to_yaml_text({"class": "CommandLineTool", "id": "#main", "doc": "Two\nlines.\n",
                         "baseCommand": ["python3"], "arguments": [{"position": 3, "valueFrom": "$(runtime.cores)"}],
                         "envDef": {"PYTHONDONTWRITEBYTECODE": "1"}, "empty": {}})
    assert text == ('class: CommandLineTool\nid: "#main"\ndoc: |\n  Two\n  lines.\nbaseCommand:\n  - python3\n'
                    'arguments:\n  - position: 3\n    valueFrom: $(runtime.cores)\n'
                    'envDef:\n  PYTHONDONTWRITEBYTECODE: "1"\nempty: {}\n')
