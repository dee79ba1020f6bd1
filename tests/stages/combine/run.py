import descpipe


class Stage(descpipe.Stage):
    """Write both sums and their total as JSON; fail on purpose when `fail` is true."""

    name = "combine"
    inputs = {"even-sum": "txt", "odd-sum": "txt"}
    outputs = {"total": "json"}
    parameters = {"fail": False, "labels": ["even", "odd"]}

    def run(self):
        import json

        if self.get_parameter("fail"):
            raise RuntimeError("combine was asked to fail")
        sums = [int(open(self.get_input_path(tag)).read()) for tag in ("even-sum", "odd-sum")]
        result = dict(zip(self.get_parameter("labels"), sums), total=sum(sums))
        json.dump(result, open(self.get_output_path("total"), "w"))


if __name__ == "__main__":
    Stage.main()
