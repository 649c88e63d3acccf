"""Built-in roles and the permissions each one grants.

Roles other than project admin apply to the whole organization. A project-admin grant
names one project and covers only resources inside it.
"""

from apps.iam.permissions import CATALOG, PLATFORM_PERMISSIONS, expand_all

ORG_OWNER = "org_owner"
ORG_ADMIN = "org_admin"
PROJECT_ADMIN = "project_admin"
DEVELOPER = "developer"
AUDITOR = "auditor"
VIEWER = "viewer"

ROLE_CHOICES = [
    (ORG_OWNER, "Organization owner"),
    (ORG_ADMIN, "Organization admin"),
    (PROJECT_ADMIN, "Project admin"),
    (DEVELOPER, "Developer"),
    (AUDITOR, "Auditor"),
    (VIEWER, "Viewer"),
]

PROJECT_SCOPED_ROLES = frozenset({PROJECT_ADMIN})

# Cache and traffic-control state that developers and viewers may read. Hooks are left
# out because webhook hook options may hold credentials in headers, SIEM destinations
# because they name internal endpoints, and the compliance records are audit data.
_OPERATIONS_READ = [
    "cache:policy.read",
    "cache:purge.read",
    "cache:quarantine.read",
    "compliance:kill_switch.read",
    "compliance:passthrough.read",
    "compliance:settings.read",
]

# Audit data: gateway audit events, the admin audit log, hook outcomes, control
# changes and captured bodies, which hold prompt text.
_AUDIT_READ = [
    "audit:*.read",
    "compliance:stage_record.read",
    "compliance:control_event.read",
    "compliance:body_capture.read",
]

_READ_ALL = [
    "tenancy:*.read",
    "keys:*.read",
    "providers:*.read",
    "iam:user.read",
    "iam:membership.read",
    "iam:group.read",
    "iam:policy.read",
    "iam:tag.read",
    "quotas:*.read",
    *_OPERATIONS_READ,
]

_ORG_PERMISSIONS = frozenset(CATALOG) - PLATFORM_PERMISSIONS

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    ORG_OWNER: _ORG_PERMISSIONS,
    # An admin runs the organization but cannot delete it, so it cannot grant the owner
    # role either: the escalation check requires holding every permission granted.
    ORG_ADMIN: _ORG_PERMISSIONS - {"tenancy:organization.delete"},
    PROJECT_ADMIN: expand_all(
        [
            "tenancy:project.read",
            "tenancy:project.update",
            "keys:*",
            "providers:*.read",
            "audit:event.read",
        ]
    ),
    DEVELOPER: expand_all(
        [
            "tenancy:*.read",
            "keys:key.read",
            "keys:key.create",
            "keys:key.rotate",
            "keys:key.revoke",
            "providers:*.read",
            *_OPERATIONS_READ,
        ]
    ),
    AUDITOR: expand_all(_AUDIT_READ),
    VIEWER: expand_all(_READ_ALL),
}


def permissions_of(role: str) -> frozenset[str]:
    """Return the permissions role grants; raise KeyError for an unknown role."""
    return ROLE_PERMISSIONS[role]
