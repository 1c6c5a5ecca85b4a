"""Compute: where jobs run and what they run in (the environment builder, the scheduler and
its launchers). Beside ``store`` and ``storage``: services use it; it uses the store and the
domain, never services or the API."""
