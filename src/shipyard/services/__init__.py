"""Use cases. Each service owns its transactions; routes and the CLI only call services."""
