"""The scoring runtime of online deployments: the scoring server each instance runs
(``scoring_server.py``, standard library only) and the supervisor that keeps a deployment's
instances healthy (``instances.py``)."""
