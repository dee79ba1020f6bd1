"""Run order comes from the files stages pass, plus any extra `depends-on` ordering."""
from __future__ import annotations

from descpipe.pipeline import load_pipeline

from conftest import TESTS

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
