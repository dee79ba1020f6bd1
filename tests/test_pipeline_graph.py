"""Run order comes from the files stages pass, plus any extra `depends-on` ordering."""
from __future__ import annotations

from descpipe.pipeline import load_pipeline

from conftest import TESTS, descpipe

FAN = "pipelines/fan.yaml"


def order(path):
    return [stage.name for stage in load_pipeline(path).stages]


def test_listed_order_does_not_matter(toy):
    path = toy / FAN
    path.write_text(path.read_text().replace("[split, sum_evens, sum_odds, combine]",
                                             "[combine, sum_odds, sum_evens, split]"))
    assert order(path) == ["split", "sum_odds", "sum_evens", "combine"]


def test_ties_keep_the_listed_order():
    assert order(TESTS / FAN) == ["split", "sum_evens", "sum_odds", "combine"]


def test_depends_on_adds_ordering_beyond_the_data_flow(toy):
    path = toy / FAN
    path.write_text(path.read_text() + "sum_evens:\n  depends-on: [split, sum_odds]\n")
    assert order(path) == ["split", "sum_odds", "sum_evens", "combine"]


def test_overall_inputs_are_the_tags_no_stage_makes():
    pipeline = load_pipeline(TESTS / FAN)
    assert list(pipeline.input_types) == ["numbers"]
    assert pipeline.inputs["numbers"].name == "numbers.txt"
    assert pipeline.final == ("even-numbers", "odd-numbers", "even-sum", "odd-sum", "total")


def long_chain(root, stages: int, closed: bool = False):
    """A chain s0 -> s1 -> ... listed last stage first; `closed` makes s0 read what the last makes."""
    for i in range(stages):
        folder = root / "images" / f"s{i}"
        folder.mkdir(parents=True)
        (folder / "Dockerfile").write_text("FROM scratch\n")
        source = f"t{stages - 1}" if i == 0 and closed else "seed" if i == 0 else f"t{i - 1}"
        (folder / "run.py").write_text(
            f'import descpipe\n\n\nclass Stage(descpipe.Stage):\n    """Step {i}."""\n\n'
            f'    inputs = {{"{source}": "txt"}}\n    outputs = {{"t{i}": "txt"}}\n\n    def run(self):\n        pass\n')
    (root / "seed.txt").write_text("1\n")
    names = ", ".join(f"s{i}" for i in reversed(range(stages)))
    path = root / "pipeline.yaml"
    inputs = "" if closed else "runtime: {inputs: {seed: seed.txt}}\n"
    path.write_text(f"pipeline: {{images: [images], stages: [{names}]}}\n{inputs}")
    return path


def test_a_chain_of_thousands_listed_backwards_is_ordered(tmp_path):
    # Deeper than Python's recursion limit: the graph walks must not recurse per stage.
    assert order(long_chain(tmp_path, 1500)) == [f"s{i}" for i in range(1500)]


def test_a_cycle_through_thousands_of_stages_is_a_clear_error(tmp_path):
    path = long_chain(tmp_path, 1500, closed=True)
    result = descpipe("validate", path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{path}:1: the stages form a cycle through their files (s1499 <- s1498 <- " in result.stderr
    assert "<- s1 <- s0 <- s1499, each reading what the next makes)" in result.stderr
