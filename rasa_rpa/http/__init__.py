"""The HTTP edge: every route rasa-rpa adds to the action server.

Each module is one concern (callbacks, vendor webhooks, Botpress, admin,
monitor); :mod:`rasa_rpa.http.common` holds what they share. Routes read the
runtime from ``request.app.ctx``, where the plugin puts it.
"""
