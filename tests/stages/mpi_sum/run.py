import descpipe


class Stage(descpipe.Stage):
    """Add up the odd numbers over MPI ranks: each rank sums its share, rank 0 writes the total."""

    name = "mpi_sum"
    inputs = {"odd-numbers": "txt"}
    outputs = {"mpi-sum": "json"}

    def run(self):
        import json
        import os

        from mpi4py import MPI

        comm = MPI.COMM_WORLD
        numbers = [int(n) for n in open(self.get_input_path("odd-numbers")).read().split()]
        total = comm.reduce(sum(numbers[comm.rank::comm.size]), root=0)
        print(f"rank {comm.rank} of {comm.size}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}", flush=True)
        if comm.rank == 0:
            json.dump({"ranks": comm.size, "sum": total}, open(self.get_output_path("mpi-sum"), "w"))
        # Every rank checks the output after run(): none may look before rank 0 has written it.
        comm.Barrier()


if __name__ == "__main__":
    Stage.main()
