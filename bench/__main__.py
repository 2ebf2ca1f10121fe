"""`python -m bench`: the whole benchmark suite (see bench/run.py)."""

# Guarded, and importing nothing above the guard: forkserver and spawn workers import the main
# module as __mp_main__, and must neither run the suite nor pay for its imports.
if __name__ == "__main__":
    import sys

    from bench.run import main

    sys.exit(main())
