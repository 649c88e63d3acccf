"""An HTTP client that signs in through the provider's forms like a browser."""

import re
from collections.abc import Callable
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit, urlunsplit

import httpx

_FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')


def form_action(page: httpx.Response) -> str:
    match = _FORM_ACTION.search(page.text)
    assert match, f"no form on {page.url}: {page.text[:300]}"
    return urljoin(str(page.url), match.group(1))


def replace_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    query.update(params)
    return urlunsplit(parts._replace(query=urlencode(query)))


class Browser:
    """Follow redirects across the gateway and the provider, keeping cookies."""

    def __init__(self, gateway_url: str) -> None:
        self.gateway_url = gateway_url
        self.client = httpx.Client(timeout=15, follow_redirects=False)
        self.authorization_url = ""

    def start(self, next_path: str = "/admin/") -> str:
        response = self.client.get(f"{self.gateway_url}/sso/login/?next={next_path}")
        assert response.status_code == 302, response.text[:300]
        self.authorization_url = response.headers["location"]
        return self.authorization_url

    def follow(self, response: httpx.Response) -> httpx.Response:
        """Follow redirects until a page or a redirect back to the gateway callback."""
        while response.is_redirect:
            target = urljoin(str(response.url), response.headers["location"])
            if target.startswith(f"{self.gateway_url}/sso/callback/"):
                return response
            response = self.client.get(target)
        return response

    def sign_in(
        self,
        login: str,
        password: str,
        *,
        tamper: Callable[[str], str] | None = None,
    ) -> httpx.Response:
        """Run the code flow up to the gateway callback and return its response."""
        url = self.start()
        if tamper is not None:
            url = tamper(url)
        page = self.follow(self.client.get(url))
        page = self.follow(
            self.client.post(
                form_action(page), data={"login": login, "password": password}
            )
        )
        redirect = self.follow(self.client.post(form_action(page)))
        assert redirect.is_redirect, f"consent did not redirect: {redirect.text[:300]}"
        self.callback_url = urljoin(str(redirect.url), redirect.headers["location"])
        return self.client.get(self.callback_url)

    @property
    def session_key(self) -> str | None:
        return self.client.cookies.get("sessionid")

    def close(self) -> None:
        self.client.close()
