"""Zenrows, the synchronous scraping API: GET /v1/?apikey=&url=&js_render=&premium_proxy=
answers with the page's HTML. Retries 429/5xx/connection errors; never logs the API key."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

DEFAULT_BASE_URL = "https://api.zenrows.com/v1/"
RETRYABLE = frozenset({429, 500, 502, 503, 504})


class ZenrowsError(RuntimeError):
    pass


@dataclass(frozen=True)
class Page:
    url: str
    html: str
    status_code: int


class ZenrowsClient:
    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        max_attempts: int = 3,
        timeout: float = 60.0,
        backoff: float = 0.5,
    ) -> None:
        self._api_key = api_key
        self._base_url = base_url
        self._max_attempts = max_attempts
        self._timeout = timeout
        self._backoff = backoff
        self._session = requests.Session()

    def scrape(self, url: str, params: Mapping[str, Any]) -> Page:
        """Fetch `url`; `params` are Zenrows options such as js_render and premium_proxy."""
        query = {"apikey": self._api_key, "url": url} | {k: _flag(v) for k, v in params.items()}
        last = "no attempt"
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = self._session.get(self._base_url, params=query, timeout=self._timeout)
            except requests.RequestException as exc:
                last = type(exc).__name__
            else:
                if response.ok:
                    return Page(url, response.text, response.status_code)
                last = f"HTTP {response.status_code}"
                if response.status_code not in RETRYABLE:
                    break
            time.sleep(self._backoff * 2 ** (attempt - 1))
        raise ZenrowsError(f"Zenrows could not fetch {url}: {last}")

    def close(self) -> None:
        self._session.close()


def _flag(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
