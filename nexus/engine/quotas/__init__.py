"""Multi-axis quotas: rules, windows, estimates, counter stores and the pipeline stage.

Framework-free, so the gateway, the compliance proxy and the agent can share it.
"""
