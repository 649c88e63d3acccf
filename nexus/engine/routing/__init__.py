"""Routing: strategies that choose targets, retries, failover and target health.

Framework-free: the gateway plugs `RoutingRouter` in as its router, and the
control plane validates route configs with `parse_node` and builds a `RouteTable`
for the config snapshot.
"""
