"""The ``shipyard`` command: thin, calls the SDK (server commands call the app factory)."""
