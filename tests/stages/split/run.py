import descpipe


class Stage(descpipe.Stage):
    """Split a list of whole numbers into the even and the odd ones, each multiplied by `scale`."""

    name = "split"
    inputs = {"numbers": "txt"}
    outputs = {"even-numbers": "txt", "odd-numbers": "txt"}
    parameters = {"scale": 1}

    def run(self):
        numbers = [int(n) * self.get_parameter("scale") for n in open(self.get_input_path("numbers")).read().split()]
        for tag, remainder in (("even-numbers", 0), ("odd-numbers", 1)):
            with open(self.get_output_path(tag), "w") as f:
                f.write("".join(f"{n}\n" for n in numbers if n % 2 == remainder))


if __name__ == "__main__":
    Stage.main()
