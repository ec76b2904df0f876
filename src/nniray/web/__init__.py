"""The experiment's web server: NNI's REST API, the UI's paged routes and its static files.

Importing this package is light (no FastAPI): the CLI uses :mod:`nniray.web.tokens` to send
the experiment's token.  The app itself is :func:`nniray.web.app.create_app`, served by
:class:`nniray.web.server.RestServer`.
"""
