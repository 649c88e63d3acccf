"""Nexus resource names (NRN) and glob matching.

A resource name is `nrn:nexus:<service>:<org>[/<project>]:<type>/<id>`, for example
`nrn:nexus:keys:acme/web:key/42`. The org segment is the organization slug, the
project segment the project slug, and the id the row's primary key. Platform-wide
resources (provider connections and models, which every organization shares) have an
empty org segment: `nrn:nexus:providers::model/7`.

Patterns are shell-style globs matched against the whole name, where `*` also matches
`/` and `:`. So `nrn:nexus:keys:acme:key/*` covers the organization's keys outside
projects, `nrn:nexus:keys:acme/*:key/*` the keys inside its projects.
"""

from dataclasses import dataclass
from fnmatch import fnmatchcase

from apps.iam.errors import InvalidResourceNameError

PREFIX = "nrn:nexus:"


@dataclass(frozen=True)
class Nrn:
    """A parsed resource name."""

    service: str
    org: str
    project: str
    type: str
    id: str

    def __str__(self) -> str:
        scope = f"{self.org}/{self.project}" if self.project else self.org
        return f"{PREFIX}{self.service}:{scope}:{self.type}/{self.id}"

    @property
    def is_platform(self) -> bool:
        return not self.org


def build(service: str, org: str, type_: str, id_: object, project: str = "") -> Nrn:
    """Return the resource name of one resource."""
    return Nrn(service=service, org=org, project=project, type=type_, id=str(id_))


def parse(text: str) -> Nrn:
    """Parse a resource name; raise InvalidResourceNameError if it is malformed."""
    if not text.startswith(PREFIX):
        raise InvalidResourceNameError(
            f'Resource name "{text}" does not start with "{PREFIX}".'
        )
    parts = text[len(PREFIX) :].split(":")
    if len(parts) != 3 or "/" not in parts[2]:
        raise InvalidResourceNameError(
            f'Resource name "{text}" is not of the form '
            "nrn:nexus:<service>:<org>[/<project>]:<type>/<id>."
        )
    service, scope, typed_id = parts
    org, _, project = scope.partition("/")
    type_, _, id_ = typed_id.partition("/")
    if not service or not type_ or not id_:
        raise InvalidResourceNameError(f'Resource name "{text}" has an empty segment.')
    return Nrn(service=service, org=org, project=project, type=type_, id=id_)


def matches(pattern: str, name: Nrn | str) -> bool:
    """Return whether the glob pattern matches the resource name."""
    return fnmatchcase(str(name), pattern)


def matches_any(patterns: list[str], name: Nrn | str) -> bool:
    """Return whether any of the glob patterns matches the resource name."""
    text = str(name)
    return any(fnmatchcase(text, pattern) for pattern in patterns)
