"""The V2 dossier pipeline's API backend: what Make.com calls while it generates a dossier.

`inputs` and `outputs` hold the request and response bodies (built from the checked types of
`fields`), `service` the database work (plain functions on a psycopg connection), and
`orchestrator.web.columnline_routes` mounts them under `/api/columnline/`.
"""
