"""`python -m rl3dedit`: the same command line as the `rl3dedit` script."""

from rl3dedit.cli.main import main

if __name__ == "__main__":
    main()
