"""`enrich estimate`: what a file will cost before anything is sent."""

from __future__ import annotations
