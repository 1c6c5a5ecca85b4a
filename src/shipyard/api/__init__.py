"""The HTTP API: the app factory, routers, the authorization dependency, problem responses."""
