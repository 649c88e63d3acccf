"""The quota part of the traffic plane's config snapshot."""

import logging
import time
from collections import defaultdict

from django.conf import settings

from apps.quotas.models import Quota, QuotaSettings
from apps.quotas.selectors import stored_usage
from nexus.engine.quotas import estimate
from nexus.engine.quotas.rules import OrgPolicy, QuotaConfig, QuotaRule, Unit
from nexus.engine.quotas.windows import WindowError

logger = logging.getLogger(__name__)


def build_quota_config() -> QuotaConfig:
    """Read enabled quotas, organization settings and stored usage into a QuotaConfig.

    Stored usage (the seeds) is summed from the audit log for each quota's current
    window. The stage seeds a counter with it only when the counter store lacks that
    counter, for example after a restart of the embedded default or of Redis.
    """
    now = time.time()
    rules: dict[int, list[QuotaRule]] = defaultdict(list)
    seeds: dict[str, tuple[tuple[int, int], ...]] = {}
    for quota in Quota.objects.filter(enabled=True).order_by("pk"):
        try:
            rule = quota.to_rule()
        except (WindowError, ValueError) as exc:
            logger.error("quota %s skipped: %s", quota.uid, exc)
            continue
        rules[rule.org_id].append(rule)
        seeds.update(stored_usage(rule, rule.window.slot(now)))
    if any(rule.unit != Unit.REQUESTS for items in rules.values() for rule in items):
        # This runs in a worker thread, so the first request does not load it.
        estimate.preload(("o200k_base",))
    default = OrgPolicy(
        fail_open=settings.NEXUS_QUOTA_FAIL_MODE == QuotaSettings.FAIL_OPEN,
        default_output_tokens=settings.NEXUS_QUOTA_DEFAULT_OUTPUT_TOKENS,
    )
    policies = {
        row.organization_id: OrgPolicy(
            fail_open=row.fail_mode == QuotaSettings.FAIL_OPEN,
            default_output_tokens=row.default_output_tokens
            or default.default_output_tokens,
        )
        for row in QuotaSettings.objects.all()
    }
    return QuotaConfig(
        rules={org_id: tuple(items) for org_id, items in rules.items()},
        policies=policies,
        default_policy=default,
        seeds=seeds,
    )
