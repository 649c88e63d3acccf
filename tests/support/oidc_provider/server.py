"""Start the Node OpenID Connect provider (provider.mjs) for the sign-on tests.

The provider's npm packages are pinned in package-lock.json beside this file. When
node_modules is missing, `npm ci` installs them once (a few seconds, from the npm
registry). Tests skip with a reason when node or the packages cannot be had.
"""

import fcntl
import json
import os
import select
import shutil
import subprocess
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "provider.mjs"
START_TIMEOUT = 20


class ProviderUnavailableError(RuntimeError):
    """Node or the provider's npm packages are missing."""


def ensure_installed() -> None:
    """Install the pinned npm packages unless they are there; raise when impossible."""
    if shutil.which("node") is None:
        raise ProviderUnavailableError("node is not installed")
    # Parallel test workers share the folder, so one installs while the others wait.
    with open(HERE / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _install()


def _install() -> None:
    if (HERE / "node_modules" / "oidc-provider" / "package.json").exists():
        return
    if shutil.which("npm") is None:
        raise ProviderUnavailableError("npm is not installed to fetch oidc-provider")
    result = subprocess.run(
        ["npm", "ci", "--prefix", str(HERE), "--no-audit", "--no-fund"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise ProviderUnavailableError(
            f"npm ci failed for oidc-provider: {result.stderr.strip()[-500:]}"
        )


class OidcProvider:
    """A running provider.mjs process with accounts a test can change."""

    def __init__(self, workdir: Path, redirect_uri: str) -> None:
        self.client_id = "nexus-test"
        self.client_secret = os.urandom(16).hex()
        self.accounts_file = workdir / "accounts.json"
        self.accounts: dict[str, dict] = {}
        self._write_accounts()
        config = workdir / "provider.json"
        config.write_text(
            json.dumps(
                {
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                    "redirect_uris": [redirect_uri],
                    "accounts_file": str(self.accounts_file),
                }
            )
        )
        self.process = subprocess.Popen(
            ["node", str(SCRIPT), str(config)],
            cwd=HERE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.issuer = self._read_issuer()
        self.metadata = httpx.get(
            f"{self.issuer}/.well-known/openid-configuration", timeout=5
        ).json()

    def _read_issuer(self) -> str:
        ready, _, _ = select.select([self.process.stdout], [], [], START_TIMEOUT)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError(f"OpenID Connect provider did not start: {line!r}")
        return line.split(" ", 1)[1].strip()

    def _write_accounts(self) -> None:
        temporary = self.accounts_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.accounts))
        temporary.replace(self.accounts_file)

    def add_account(
        self,
        login: str,
        *,
        password: str,
        email: str,
        groups: list[str],
        mfa: bool = False,
        given_name: str = "Test",
        family_name: str = "Person",
    ) -> None:
        """Add or replace an account; the provider reads the file on every lookup."""
        self.accounts[login] = {
            "password": password,
            "email": email,
            "email_verified": True,
            "given_name": given_name,
            "family_name": family_name,
            "name": f"{given_name} {family_name}",
            "groups": groups,
            "mfa": mfa,
        }
        self._write_accounts()

    def settings(self) -> dict[str, object]:
        """Return the Django settings that point single sign-on at this provider."""
        return {
            "NEXUS_OIDC_ENABLED": True,
            "NEXUS_OIDC_ISSUER": self.issuer,
            "NEXUS_OIDC_GROUPS_CLAIM": "groups",
            "OIDC_RP_CLIENT_ID": self.client_id,
            "OIDC_RP_CLIENT_SECRET": self.client_secret,
            "OIDC_OP_AUTHORIZATION_ENDPOINT": self.metadata["authorization_endpoint"],
            "OIDC_OP_TOKEN_ENDPOINT": self.metadata["token_endpoint"],
            "OIDC_OP_USER_ENDPOINT": self.metadata["userinfo_endpoint"],
            "OIDC_OP_JWKS_ENDPOINT": self.metadata["jwks_uri"],
            "OIDC_RP_SCOPES": "openid email profile groups",
        }

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
