"""Operator tools behind the ``rasa-rpa`` command: doctor, export, jobs, domain.

They work from the config and the store, never through an HTTP route
module, so they run while the server is down.
"""
