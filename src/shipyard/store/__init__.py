"""Metadata store: ORM rows, one repository module per aggregate, and the migrations.

Repository functions take a ``Session`` and never commit: the service that calls them owns
the transaction (``Database.write()`` / ``Database.read()``).
"""
