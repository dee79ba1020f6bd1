import descpipe


class Stage(descpipe.Stage):
    """Add up the odd numbers; print how many there were and the cores granted."""

    name = "sum_odds"
    inputs = {"odd-numbers": "txt"}
    outputs = {"odd-sum": "txt"}

    def run(self):
        import os

        odds = [int(n) for n in open(self.get_input_path("odd-numbers")).read().split()]
        print(f"{len(odds)} odd numbers on {self.cores} cores, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
        open(self.get_output_path("odd-sum"), "w").write(f"{sum(odds)}\n")


if __name__ == "__main__":
    Stage.main()
