"""The compliance hooks pipeline, shared by the gateway, the proxy and the agent.

Hooks see normalised text segments (system prompts, messages, tool call arguments,
tool results, embeddings input, answers), never a provider's wire format, so one
hook serves every provider and every ingress. Nothing here imports Django.
"""
