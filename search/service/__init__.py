"""`viml serve`: the search as a local HTTP service for editor panels (Blender, Resolve).

    tokens.py   the per-user token (a 0600 file) and the endpoint file clients read
    limits.py   ASGI guards: loopback Host, no foreign Origin, the token, request sizes
    work.py     the one search object behind a lock, deadlines, excerpts and previews
    app.py      the FastAPI app (routes, request/response models, error mapping)
    server.py   binding to 127.0.0.1 only, serving with uvicorn

Clients need nothing of ViML: viml/integrations/viml_client.py is the standard-library client the
editor add-ons ship.
"""
