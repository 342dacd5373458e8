"""A policy served by any OpenAI-compatible endpoint (vLLM, llama.cpp server, ...).

`policy` (`OpenAIPolicy`), `answers` (reading and checking what the endpoint sends back) and
`bounded_http` (requests bounded in size and time).
"""

from creditgym.agents.openai_client.policy import OpenAIPolicy

__all__ = ["OpenAIPolicy"]
