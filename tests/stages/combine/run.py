import descpipe


class Stage(descpipe.Stage):
    """Write both sums and their total as JSON.

    Fails on purpose when `fail` is true, or on its first attempt when `fail_once` names a marker
    file that does not exist yet (the marker outlives the attempt, so a retry succeeds).
    """

    name = "combine"
    inputs = {"even-sum": "txt", "odd-sum": "txt"}
    outputs = {"total": "json"}
    parameters = {"fail": False, "fail_once": "", "labels": ["even", "odd"]}

    def run(self):
        import json
        import os

        if self.get_parameter("fail"):
            raise RuntimeError("combine was asked to fail")
        marker = self.get_parameter("fail_once")
        if marker and not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("combine was asked to fail on its first attempt")
        sums = [int(open(self.get_input_path(tag)).read()) for tag in ("even-sum", "odd-sum")]
        result = dict(zip(self.get_parameter("labels"), sums), total=sum(sums))
        json.dump(result, open(self.get_output_path("total"), "w"))


if __name__ == "__main__":
    Stage.main()
