"""CWL export: valid for cwltool and cwl-utils, deterministic, and faithful to the stage metadata."""
from __future__ import annotations

import shutil

import pytest
from cwl_utils.parser import load_document_by_uri
from ruamel.yaml import YAML

from conftest import cwltool, descpipe, processes

FAN = "pipelines/fan.yaml"


def load_yaml(path):
    return YAML(typ="safe", pure=True).load(path.read_text())


def export(root, *extra, out="out/wf.cwl"):
    """Export the toy pipeline; every export made here must pass both validators."""
    result = descpipe("export", FAN, "-o", out, *extra, cwd=root)
    assert result.returncode == 0, result.stderr
    validated = cwltool("--validate", root / out)
    assert validated.returncode == 0 and "is valid CWL" in validated.stdout, validated.stderr
    load_document_by_uri(str(root / out))
    return root / out


@pytest.mark.parametrize("split", [False, True], ids=["one-document", "one-file-per-tool"])
def test_export_passes_cwltool_validate_and_loads_with_cwl_utils(toy, split):
    wf = export(toy, *(["--split"] if split else []))   # the old name of --tool-files still works
    workflow = load_document_by_uri(str(wf))
    assert [step.id.rsplit("/", 1)[1] for step in workflow.steps] == ["split", "sum_evens", "sum_odds", "combine"]
    if split:
        assert sorted(p.name for p in wf.parent.glob("*.cwl")) == [
            "combine.cwl", "split.cwl", "sum_evens.cwl", "sum_odds.cwl", "wf.cwl"]


def test_tool_files_export_refuses_a_workflow_named_like_a_tool(toy):
    result = descpipe("export", FAN, "-o", "out/combine.cwl", "--tool-files", cwd=toy)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == ("descpipe: error: out/combine.cwl: the workflow would overwrite the tool of stage "
                             "'combine', which --tool-files also writes as combine.cwl: export to another file name\n")
    assert not (toy / "out").exists(), "nothing half-written"


def test_export_is_byte_for_byte_deterministic_wherever_the_checkout_is(toy, tmp_path_factory):
    first = export(toy)
    again = export(toy, out="again/wf.cwl")
    other = tmp_path_factory.mktemp("elsewhere")
    shutil.copytree(toy / "stages", other / "stages")
    shutil.copytree(toy / "pipelines", other / "pipelines")
    moved = export(other)
    for name in ("wf.cwl", "job.yml"):
        assert (first.parent / name).read_bytes() == (again.parent / name).read_bytes() \
            == (moved.parent / name).read_bytes()


def test_job_file_goes_where_asked_and_the_output_folder_is_created(toy):
    export(toy, "--job", "jobs/fan-inputs.yml", out="deep/er/wf.cwl")
    assert (toy / "deep/er/wf.cwl").is_file()
    job = load_yaml(toy / "jobs/fan-inputs.yml")
    assert job["numbers"] == {"class": "File", "path": "../pipelines/numbers.txt", "basename": "numbers.txt",
                              "format": "http://edamontology.org/format_2330"}


def test_tools_carry_the_stage_metadata(toy):
    document = load_yaml(export(toy))
    assert document["cwlVersion"] == "v1.2"
    assert document["$namespaces"] == {"edam": "http://edamontology.org/"}
    assert document["$schemas"]
    tools = processes(document)
    split = tools["split"]
    assert split["class"] == "CommandLineTool"
    assert split["label"] == "split"
    assert split["doc"].startswith("Split a list of whole numbers")
    assert split["baseCommand"] == ["python3"]
    assert split["hints"]["DockerRequirement"] == {"dockerPull": "test/fan-split:1.0"}
    assert split["inputs"]["numbers"]["type"] == "File"
    assert split["inputs"]["numbers"]["format"] == "edam:format_2330"
    assert split["inputs"]["scale"]["type"] == "int" and split["inputs"]["scale"]["default"] == 1
    assert split["outputs"]["even-numbers"]["outputBinding"] == {"glob": "even-numbers.txt"}
    assert split["outputs"]["stdout"] == {"type": "stdout"} and split["stdout"] == "split.out"
    assert split["outputs"]["stderr"] == {"type": "stderr"} and split["stderr"] == "split.err"
    assert tools["sum_evens"]["inputs"]["config"]["format"] == "edam:format_3750"
    assert tools["combine"]["inputs"]["labels"]["type"] == {"type": "array", "items": "string"}
    assert tools["combine"]["outputs"]["total"]["format"] == "edam:format_3464"
    for tool in tools.values():
        requirements = {**tool.get("requirements", {}), **tool.get("hints", {})}
        assert "ShellCommandRequirement" not in requirements
        assert "InlineJavascriptRequirement" not in requirements


def test_resources_from_stage_and_pipeline_file(toy):
    edit = toy / FAN
    edit.write_text(edit.read_text() + "sum_evens:\n  openmp: 4\n  memory_mb: 1500\n  minutes: 7\n"
                    "  image: registry.example/even:2\n")
    tools = processes(load_yaml(export(toy)))
    even = tools["sum_evens"]
    assert even["requirements"]["ResourceRequirement"] == {"coresMin": 4, "ramMin": 1500}
    assert even["requirements"]["ToolTimeLimit"] == {"timelimit": 420}
    assert even["hints"]["DockerRequirement"]["dockerPull"] == "registry.example/even:2"
    assert {"position": 3, "prefix": "--cores", "valueFrom": "$(runtime.cores)"} in even["arguments"]
    assert tools["sum_odds"]["requirements"]["ResourceRequirement"] == {"coresMin": 2}
    assert tools["split"]["requirements"]["ResourceRequirement"] == {"coresMin": 1}
    assert "ToolTimeLimit" not in tools["split"]["requirements"]


def test_workflow_wires_stages_by_tag(toy):
    document = load_yaml(export(toy))
    workflow = processes(document)["main"]
    assert workflow["class"] == "Workflow"
    steps = workflow["steps"]
    assert steps["combine"]["in"]["even-sum"] == "sum_evens/even-sum"
    assert steps["combine"]["in"]["odd-sum"] == "sum_odds/odd-sum"
    assert steps["split"]["in"]["numbers"] == "numbers"
    assert steps["sum_evens"]["in"]["config"] == "sum_evens.config"
    assert steps["split"]["run"]["class"] == "CommandLineTool" and steps["split"]["run"]["id"] == "split"
    assert list(steps["split"]) == ["in", "out", "run"], "the wiring first, then the tool"
    assert set(workflow["inputs"]) == {"numbers", "split.code", "split.scale", "sum_evens.code",
                                       "sum_evens.config", "sum_odds.code", "sum_odds.sleep", "combine.code",
                                       "combine.fail", "combine.fail_once", "combine.labels"}
    outputs = workflow["outputs"]
    assert outputs["total"]["outputSource"] == "combine/total"
    assert outputs["split.stderr"]["outputSource"] == "split/stderr"


def test_final_outputs_restrict_the_workflow_outputs(toy):
    edit = toy / FAN
    edit.write_text(edit.read_text().replace("  output: output\n", "  output: output\n  final: [total]\n"))
    outputs = processes(load_yaml(export(toy)))["main"]["outputs"]
    assert [o for o in outputs if "." not in o] == ["total"]


def test_job_file_holds_inputs_config_code_and_set_parameters(toy):
    export(toy)
    job = load_yaml(toy / "out/job.yml")
    assert job["sum_evens.config"]["format"] == "http://edamontology.org/format_3750"
    assert job["sum_evens.config"]["basename"] == "sum.yaml", "staged under the name the stage declares"
    assert job["split.code"] == {"class": "Directory", "path": "../stages/split"}
    assert job["split.scale"] == 3
    assert job["combine.labels"] == ["twos", "ones"]
    assert "combine.fail" not in job, "parameters the pipeline does not set keep the stage default"


def test_network_only_for_stages_that_ask_for_it(toy):
    run_py = toy / "stages/sum_odds/run.py"
    run_py.write_text(run_py.read_text().replace('    outputs = {"odd-sum": "txt"}\n',
                                                 '    outputs = {"odd-sum": "txt"}\n    network = True\n'))
    tools = processes(load_yaml(export(toy)))
    assert tools["sum_odds"]["requirements"]["NetworkAccess"] == {"networkAccess": True}
    assert "NetworkAccess" not in tools["split"]["requirements"]
