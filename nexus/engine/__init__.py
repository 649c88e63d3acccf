"""Framework-free traffic engine shared by the gateway, the proxy and the agent."""
