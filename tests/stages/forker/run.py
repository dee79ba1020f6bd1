import descpipe


class Stage(descpipe.Stage):
    """Fork two children that outlive it, then sleep `sleep` seconds: one child in its process group,
    one in a session of its own (a double-forked daemon). Each writes its pid to the file `pids`."""

    name = "forker"
    inputs = {"numbers": "txt"}
    outputs = {"count": "txt"}
    parameters = {"pids": "", "sleep": 0.0}

    def run(self):
        import os
        import time

        pids = self.get_parameter("pids")
        for escape in (False, True):
            child = os.fork()
            if child == 0:
                if escape:
                    os.setsid()
                    if os.fork():
                        os._exit(0)
                with open(pids, "a") as f:
                    f.write(f"{os.getpid()}\n")
                time.sleep(120)
                os._exit(0)
            if escape:
                os.waitpid(child, 0)
        while not os.path.exists(pids) or len(open(pids).read().split()) < 2:   # both have said their pid
            time.sleep(0.01)
        count = len(open(self.get_input_path("numbers")).read().split())
        open(self.get_output_path("count"), "w").write(f"{count}\n")
        time.sleep(self.get_parameter("sleep"))


if __name__ == "__main__":
    Stage.main()
