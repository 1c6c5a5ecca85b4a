"""The Python client. It talks HTTP to a Shipyard server and never imports server code."""
