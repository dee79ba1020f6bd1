import descpipe


class Stage(descpipe.Stage):
    """Add up the even numbers, plus the `offset` in its config file."""

    name = "sum_evens"
    inputs = {"even-numbers": "txt"}
    outputs = {"even-sum": "txt"}
    config = {"config": "sum.yaml"}

    def run(self):
        offset = int(open(self.get_config_path("config")).read().split(":")[1])
        total = offset + sum(int(n) for n in open(self.get_input_path("even-numbers")).read().split())
        open(self.get_output_path("even-sum"), "w").write(f"{total}\n")


if __name__ == "__main__":
    Stage.main()
