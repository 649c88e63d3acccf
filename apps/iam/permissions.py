"""The permission catalog: every action the control plane authorizes.

A permission is written `<service>:<resource>.<verb>`, for example `keys:key.create`.
Policies and service-token scopes may use shell-style globs (`keys:*`, `*:*.read`);
`expand` turns a glob into the catalog entries it covers.
"""

from fnmatch import fnmatchcase

CATALOG: dict[str, str] = {
    "tenancy:organization.create": "Create organizations (superusers only).",
    "tenancy:organization.read": "View the organization.",
    "tenancy:organization.update": "Rename the organization.",
    "tenancy:organization.delete": "Delete the organization and everything in it.",
    "tenancy:project.read": "View projects.",
    "tenancy:project.create": "Create projects.",
    "tenancy:project.update": "Edit projects.",
    "tenancy:project.delete": "Delete projects.",
    "keys:key.read": "View virtual keys (prefix only).",
    "keys:key.create": "Issue virtual keys.",
    "keys:key.update": "Edit virtual keys.",
    "keys:key.rotate": "Rotate virtual keys.",
    "keys:key.revoke": "Revoke virtual keys.",
    "keys:key.delete": "Delete virtual keys.",
    "providers:connection.read": "View provider connections (never the credential).",
    "providers:connection.create": "Add provider connections.",
    "providers:connection.update": "Edit provider connections and their credentials.",
    "providers:connection.delete": "Delete provider connections.",
    "providers:model.read": "View models and their prices.",
    "providers:model.create": "Add models.",
    "providers:model.update": "Edit models and prices.",
    "providers:model.delete": "Delete models.",
    "audit:event.read": "Read gateway audit events.",
    "audit:adminlog.read": "Read the admin audit log.",
    "iam:user.read": "View the organization's users.",
    "iam:user.update": "Edit user tags used by policies.",
    "iam:membership.read": "View role grants.",
    "iam:membership.create": "Grant roles.",
    "iam:membership.delete": "Revoke roles.",
    "iam:group.read": "View groups.",
    "iam:group.create": "Create groups.",
    "iam:group.update": "Edit groups, their members and roles.",
    "iam:group.delete": "Delete groups.",
    "iam:policy.read": "View policies.",
    "iam:policy.create": "Create policies.",
    "iam:policy.update": "Edit policies.",
    "iam:policy.delete": "Delete policies.",
    "iam:token.read": "View service tokens (prefix only).",
    "iam:token.create": "Create service tokens.",
    "iam:token.revoke": "Revoke service tokens.",
    "iam:tag.read": "View resource tags.",
    "iam:tag.update": "Set resource tags used by policies.",
    "quotas:quota.read": "View quotas and their current usage.",
    "quotas:quota.create": "Create quotas.",
    "quotas:quota.update": "Edit quotas.",
    "quotas:quota.delete": "Delete quotas.",
    "quotas:settings.read": "View quota settings: outage behaviour and alert webhook.",
    "quotas:settings.update": "Edit quota settings.",
    "quotas:alert.read": "View soft-limit alerts.",
    "quotas:rollup.read": "View hourly usage roll-ups.",
    "hooks:hook.read": "View compliance hooks and their options.",
    "hooks:hook.create": "Add compliance hooks.",
    "hooks:hook.update": "Edit compliance hooks.",
    "hooks:hook.delete": "Delete compliance hooks.",
    "hooks:hook.test": "Run the organization's hooks on sample text.",
    "compliance:kill_switch.read": "View kill switches.",
    "compliance:kill_switch.create": "Stop the organization's or a key's traffic.",
    "compliance:kill_switch.update": "Release kill switches.",
    "compliance:passthrough.read": "View emergency passthrough flags.",
    "compliance:passthrough.create": "Turn on emergency passthrough flags.",
    "compliance:passthrough.update": "Switch emergency passthrough flags off.",
    "compliance:settings.read": "View compliance settings, such as body capture.",
    "compliance:settings.create": "Add the organization's compliance settings.",
    "compliance:settings.update": "Edit compliance settings.",
    "compliance:settings.delete": "Delete compliance settings.",
    "compliance:control_event.read": "Read the change log of kill switches and flags.",
    "compliance:stage_record.read": "Read the hook outcomes recorded per request.",
    "compliance:body_capture.read": "Read captured request and response bodies.",
    "compliance:siem_destination.read": "View SIEM destinations (never the token).",
    "compliance:siem_destination.create": "Add SIEM destinations.",
    "compliance:siem_destination.update": "Edit SIEM destinations and retry them.",
    "compliance:siem_destination.delete": "Delete SIEM destinations.",
    "compliance:siem_delivery.read": "View pending and dead-lettered SIEM deliveries.",
    "cache:policy.read": "View cache policies.",
    "cache:policy.create": "Add cache policies.",
    "cache:policy.update": "Edit cache policies.",
    "cache:policy.delete": "Delete cache policies.",
    "cache:purge.read": "View cache purges.",
    "cache:purge.create": "Purge the organization's cached responses.",
    "cache:quarantine.read": "View quarantined cache entries.",
    "cache:quarantine.create": "Quarantine a cached response.",
    "cache:quarantine.update": "Release quarantined cache entries.",
    "hooks:rule_list.read": "View rule lists (superusers only).",
    "hooks:rule_list.create": "Add rule lists (superusers only).",
    "hooks:rule_list.update": "Edit rule lists (superusers only).",
    "hooks:rule_list.delete": "Delete rule lists (superusers only).",
    "hooks:webhook_host.read": "View allowed webhook hosts (superusers only).",
    "hooks:webhook_host.create": "Allow webhook hosts (superusers only).",
    "hooks:webhook_host.update": "Edit allowed webhook hosts (superusers only).",
    "hooks:webhook_host.delete": "Remove allowed webhook hosts (superusers only).",
    "cache:semantic_index.read": "View semantic indexes (superusers only).",
    "cache:semantic_index.create": "Add semantic indexes (superusers only).",
    "cache:semantic_index.update": "Edit or drop semantic indexes (superusers only).",
    "cache:semantic_index.delete": "Delete semantic indexes (superusers only).",
    "routing:route.read": "View routes (superusers only).",
    "routing:route.create": "Add routes (superusers only).",
    "routing:route.update": "Edit routes and reset target health (superusers only).",
    "routing:route.delete": "Delete routes (superusers only).",
}


# Permissions on platform resources only; no role grants them, superusers hold them.
PLATFORM_PERMISSIONS = frozenset(
    {
        "tenancy:organization.create",
        *(
            name
            for name in CATALOG
            if name.startswith(
                (
                    "hooks:rule_list.",
                    "hooks:webhook_host.",
                    "cache:semantic_index.",
                    "routing:route.",
                )
            )
        ),
    }
)


def expand(pattern: str) -> frozenset[str]:
    """Return the catalog permissions the glob pattern covers."""
    return frozenset(name for name in CATALOG if fnmatchcase(name, pattern))


def expand_all(patterns: list[str] | tuple[str, ...]) -> frozenset[str]:
    """Return the union of `expand` over patterns."""
    covered: set[str] = set()
    for pattern in patterns:
        covered |= expand(pattern)
    return frozenset(covered)


def split(permission: str) -> tuple[str, str, str]:
    """Split `service:resource.verb` into its three parts; raise ValueError if malformed."""
    service, _, rest = permission.partition(":")
    resource_type, _, verb = rest.rpartition(".")
    if not service or not resource_type or not verb:
        raise ValueError(
            f'Permission "{permission}" is not of the form service:resource.verb.'
        )
    return service, resource_type, verb
