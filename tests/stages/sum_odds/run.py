import descpipe


class Stage(descpipe.Stage):
    """Add up the odd numbers; print how many there were and the cores granted.

    Writes the first half of its output, then sleeps `sleep` seconds before the rest: a slow
    stage that a test can kill half-way through writing.
    """

    name = "sum_odds"
    inputs = {"odd-numbers": "txt"}
    outputs = {"odd-sum": "txt"}
    parameters = {"sleep": 0.0}

    def run(self):
        import os
        import time

        odds = [int(n) for n in open(self.get_input_path("odd-numbers")).read().split()]
        print(f"{len(odds)} odd numbers on {self.cores} cores, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}",
              flush=True)
        text = f"{sum(odds)}\n"
        with open(self.get_output_path("odd-sum"), "w") as f:
            f.write(text[:1])
            f.flush()
            time.sleep(self.get_parameter("sleep"))
            f.write(text[1:])


if __name__ == "__main__":
    Stage.main()
