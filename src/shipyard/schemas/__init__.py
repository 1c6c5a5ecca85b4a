"""The wire contract: request and response bodies shared by the API and the SDK.

Request bodies (``*Create``, ``*Update``) forbid unknown fields, so a typo is a 400 that names
it. Response bodies (``*Read``) ignore fields they do not know, so an older SDK keeps working
against a newer server.
"""
