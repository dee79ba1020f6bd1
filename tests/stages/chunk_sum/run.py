import descpipe


class Stage(descpipe.SplitStage):
    """Add up the numbers read from `odd-numbers` in chunks of `chunk` lines, one part per chunk, then add the partial sums.

    The part named by `fail_part` fails on purpose: always, or on its first attempt only when
    `fail_once` names a marker file that does not exist yet (the marker outlives the attempt).
    """

    name = "chunk_sum"
    inputs = {"odd-numbers": "txt"}
    outputs = {"chunk-total": "txt"}
    parameters = {"chunk": 2, "fail_part": "", "fail_once": ""}
    split_over = "chunk"

    def _numbers(self):
        return [int(n) for n in open(self.get_input_path("odd-numbers")).read().split()]

    def parts(self):
        size = self.get_parameter("chunk")
        return [f"lines-{start + 1}-{start + size}" for start in range(0, len(self._numbers()), size)]

    def run_part(self, part):
        import os

        if part == self.get_parameter("fail_part"):
            marker = self.get_parameter("fail_once")
            if not marker or not os.path.exists(marker):
                if marker:
                    open(marker, "w").close()
                raise RuntimeError(f"chunk_sum was asked to fail on part {part}")
        first, last = (int(n) for n in part.split("-")[1:])
        total = sum(self._numbers()[first - 1:last])
        print(f"part {part}: {total}")
        with open(self.get_output_path("chunk-total"), "w") as f:
            f.write(f"{total}\n")

    def gather(self, partials):
        total = sum(int(open(path).read()) for path in partials["chunk-total"])
        print(f"{len(partials['chunk-total'])} parts: {total}")
        with open(self.get_output_path("chunk-total"), "w") as f:
            f.write(f"{total}\n")


if __name__ == "__main__":
    Stage.main()
