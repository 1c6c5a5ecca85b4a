"""``python -m shipyard``: the same as the ``shipyard`` command."""

from shipyard.cli.main import main

if __name__ == "__main__":
    main()
