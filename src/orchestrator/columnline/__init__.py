"""The V2 dossier pipeline's API backend: what Make.com calls while it generates a dossier.

`models` holds the request/response bodies, `service` the database work (plain functions on a
psycopg connection), and `orchestrator.web.columnline_routes` mounts them under `/api/columnline/`.
"""
