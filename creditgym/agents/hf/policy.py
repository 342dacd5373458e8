"""`HFPolicy`: a Hugging Face causal LM as a creditgym policy, on CPU or GPU.

Generation is our own sampling loop (`creditgym.agents.hf.decoding`) over ``model(input_ids,
attention_mask, position_ids, past_key_values, use_cache=True)``: batched with left padding and
a KV cache, temperature and top-p, stopping at EOS, and optionally *constrained* to the
admissible actions (per-token masks from an `ActionTrie`). Owning the loop lets us record
exactly the log-probabilities of the distribution we sampled from and recompute them, token for
token, in `score` (the trainer's differentiable scorer) and `logprobs` (both in
`creditgym.agents.hf.scoring`, methods here).

The sampling distribution at each step is ``log_softmax(mask(logits / temperature))``, where
the mask (constrained mode only) keeps the tokens that continue some admissible action.
Recorded log-probs, `score` and `logprobs` all use it. Top-p is applied only when drawing the
sample: the recorded log-prob is that of the untruncated distribution above, which `score`
can recompute without knowing what was sampled; with ``top_p=1`` (the default, and what
training should use) it is exactly the distribution sampled from. ``temperature=0`` means
greedy decoding, scored under ``temperature=1``.

Tokenisation is done one way everywhere: the prompt and the response are tokenised
separately (`encode_prompt`, `encode_response`) and their ids concatenated, so an action
tokenises the same alone, in the trie, after any prompt, and when re-scored.

Conversations (`generate_chat`): each conversation keeps its token ids (`creditgym.agents.hf.chat`)
and the KV cache of them across turns, so a turn prefills only the tokens added since the
last one, batched over conversations with different cache lengths (each row's cache is
left-padded into one batch cache and taken back out when its response ends). `score_spans`
scores several responses inside one sequence, so the update reads an episode in one pass.

Think-then-act (``think=True``): responses are ``<think>...</think><action>...</action>``; the
thinking runs free within ``think_tokens`` and, when constrained, only the action span is
limited to the admissible actions (`ThinkActConstraint`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from creditgym.agents.base import Generation
from creditgym.agents.hf import decoding, scoring
from creditgym.agents.hf.chat import ChatState, ChatTokens
from creditgym.agents.hf.constrained import ActionTrie, ThinkActConstraint
from creditgym.agents.parsing import ACTION_CLOSE, ACTION_OPEN, THINK_CLOSE, THINK_OPEN
from creditgym.agents.protocols import check_admissible

__all__ = ["HFPolicy", "resolve_device"]

_ENCODING_CACHE_LIMIT = 200_000


def resolve_device(device: str | torch.device = "auto") -> tuple[torch.device, torch.dtype]:
    """``"auto"``: CUDA with bfloat16 when a GPU is available, else CPU with float32."""
    if str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda"), torch.bfloat16
        return torch.device("cpu"), torch.float32
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available; use device='cpu' or 'auto'")
    dtype = torch.bfloat16 if resolved.type == "cuda" else torch.float32
    return resolved, dtype


class HFPolicy:
    """A causal LM from transformers behind the `Policy` interface.

    Args:
        model: a causal LM (``AutoModelForCausalLM``); moved to `device`, dtype kept.
        tokenizer: its tokenizer; needs an EOS token (used for padding when there is no pad).
        device: ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        temperature: sampling temperature; 0 means greedy.
        top_p: nucleus sampling threshold (see the module docstring for the recorded log-probs).
        max_new_tokens: longest free-form response; constrained responses are as long as the
            longest admissible action needs.
        constrained: sample only admissible actions (needs `admissible_actions` in `generate`).
        require_tags: how the rollout should parse this policy's responses; defaults to
            ``not constrained`` (constrained decoding produces the bare action).
        chat_template: wrap each prompt as a user message in the tokenizer's chat template.
        seed: seeds the sampling generator (same seed, same weights, same prompts -> same samples).
        think: think-then-act responses (see the module docstring).
        think_tokens: the most tokens a response may think for before ``</think>`` is forced.
        max_context_tokens: token budget of a conversation's context plus its response in
            `generate_chat` (0 = none): older turns are dropped to fit.
    """

    #: `generate` takes ``teacher_force`` (see `creditgym.agents.protocols.TeacherForcingPolicy`)
    supports_teacher_forcing = True
    #: `logprobs` closes continuations with EOS unless given ``add_eos=False``
    appends_eos = True

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        device: str | torch.device = "auto",
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        constrained: bool = False,
        require_tags: bool | None = None,
        chat_template: bool = False,
        seed: int = 0,
        think: bool = False,
        think_tokens: int = 256,
        max_context_tokens: int = 0,
    ) -> None:
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        if tokenizer.eos_token_id is None:
            raise ValueError(
                "the tokenizer has no eos_token; set tokenizer.eos_token before building HFPolicy"
            )
        if chat_template and not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                "chat_template=True but this tokenizer has no chat template; use "
                "chat_template=False (plain text prompts) or a chat model's tokenizer"
            )
        self.device, _ = resolve_device(device)
        self.model = model.to(self.device)
        self.model.eval()
        self.tokenizer = tokenizer
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.max_new_tokens = int(max_new_tokens)
        self.constrained = bool(constrained)
        self.require_tags = (not self.constrained) if require_tags is None else bool(require_tags)
        self.chat_template = bool(chat_template)
        self.eos_token_id = int(tokenizer.eos_token_id)
        self.pad_token_id = int(
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_token_id
        )
        self.stop_token_ids = self._stop_token_ids()
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self._response_cache: dict[str, list[int]] = {}
        self.think = bool(think)
        self.think_tokens = int(think_tokens)
        self.max_context_tokens = int(max_context_tokens)
        if self.think:
            self.require_tags = True
        self._chat: ChatTokens | None = None
        self.prefilled_tokens = 0  # prompt tokens run through the model by generate(_chat)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        device: str | torch.device = "auto",
        gguf_file: str | None = None,
        dtype: torch.dtype | None = None,
        **kwargs: Any,
    ) -> HFPolicy:
        """Load a model directory or Hugging Face model name (bfloat16 on CUDA, float32 on CPU).

        `gguf_file` loads a GGUF checkpoint from that directory (needs ``pip install gguf``).
        `dtype` overrides the device's default weight dtype (the trainer loads float32 master
        weights for bf16 mixed precision). Other keyword arguments go to `HFPolicy`.
        """
        resolved, default_dtype = resolve_device(device)
        dtype = dtype or default_dtype
        extra = {"gguf_file": gguf_file} if gguf_file else {}
        tokenizer = AutoTokenizer.from_pretrained(str(name_or_path), **extra)
        model = AutoModelForCausalLM.from_pretrained(str(name_or_path), dtype=dtype, **extra)
        return cls(model, tokenizer, device=resolved, **kwargs)

    def save_pretrained(self, path: str | Path) -> Path:
        """Save model and tokenizer as a Hugging Face directory; `from_pretrained` reloads it."""
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(out)
        self.tokenizer.save_pretrained(out)
        return out

    # ---- tokenisation: one way everywhere ------------------------------------------------

    def _stop_token_ids(self) -> set[int]:
        stops = {self.eos_token_id}
        configured = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        if isinstance(configured, int):
            stops.add(configured)
        elif configured:
            stops.update(int(token) for token in configured)
        return stops

    def encode_prompt(self, prompt: str) -> list[int]:
        """Token ids of a prompt (through the chat template when `chat_template`)."""
        if self.chat_template:
            text = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
            )
            return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return list(self.tokenizer(prompt)["input_ids"])

    def encode_response(self, text: str, *, add_eos: bool = True) -> list[int]:
        """Token ids of a response tokenised alone, closed by EOS when `add_eos`."""
        ids = self._response_cache.get(text)
        if ids is None:
            ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            if len(self._response_cache) >= _ENCODING_CACHE_LIMIT:
                self._response_cache.clear()
            self._response_cache[text] = ids
        return ids + [self.eos_token_id] if add_eos else list(ids)

    def encode_think_act(
        self, action: str, thought: str = "", *, add_eos: bool = True
    ) -> list[int]:
        """Token ids of a think-then-act response, pieced as `ThinkActConstraint` samples them
        (so a demonstration scores under the same masks)."""
        ids = (
            self.encode_response(THINK_OPEN, add_eos=False)
            + (self.encode_response(thought, add_eos=False) if thought else [])
            + self.encode_response(THINK_CLOSE, add_eos=False)
        )
        return ids + self.encode_response(f"{ACTION_OPEN}{action}{ACTION_CLOSE}", add_eos=add_eos)

    def decode_response(self, token_ids: Sequence[int]) -> str:
        return self.tokenizer.decode(
            [token for token in token_ids if token not in self.stop_token_ids],
            skip_special_tokens=True,
            clean_up_tokenization_spaces=False,
        )

    def _tries(
        self, admissible_actions: Sequence[Sequence[str] | None] | None, batch: int
    ) -> list[Any]:
        """One decoding constraint per row: in constrained mode a trie of the row's admissible
        actions (None for rows without them); with `think`, a `ThinkActConstraint` per row."""
        if admissible_actions is not None and len(admissible_actions) != batch:
            raise ValueError(
                f"got {len(admissible_actions)} admissible-action lists for {batch} prompts; "
                "give one per prompt"
            )
        if not self.constrained or admissible_actions is None:
            admissible_actions = [None] * batch
            if not self.think:
                return [None] * batch
        encode = functools.partial(self.encode_response, add_eos=False)
        if not self.think:
            return [
                None if a is None else ActionTrie.from_actions(a, encode, self.eos_token_id)
                for a in admissible_actions
            ]
        return [
            ThinkActConstraint(
                decode=self.decode_response,
                open_ids=encode(THINK_OPEN),
                close_ids=encode(THINK_CLOSE),
                close_text=THINK_CLOSE,
                think_tokens=self.think_tokens,
                stop_ids=self.stop_token_ids,
                action=None
                if actions is None
                else ActionTrie.from_actions(
                    [f"{ACTION_OPEN}{a}{ACTION_CLOSE}" for a in actions], encode, self.eos_token_id
                ),
                free_tokens=self.max_new_tokens,
            )
            for actions in admissible_actions
        ]

    # ---- the sampling distribution, shared by generate and score -------------------------

    def _distribution(self, logits: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
        """Log-probs of the sampling distribution from raw logits (..., vocab); `allowed` masks."""
        logits = logits.float()
        if self.temperature > 0:
            logits = logits / self.temperature
        if allowed is not None:
            # finfo.min, not -inf: masked tokens get probability 0 and entropies stay finite.
            logits = logits.masked_fill(~allowed, torch.finfo(logits.dtype).min)
        return F.log_softmax(logits, dim=-1)

    def _allowed_mask(
        self, tries: Sequence[Any], prefixes: Sequence[Sequence[int]], vocab: int
    ) -> torch.Tensor | None:
        """(rows, vocab) bool mask of the tokens each row may emit next; None if no row is
        constrained. A constraint answering None leaves its row free (but for any
        `blocked_tokens` it names)."""
        if all(trie is None for trie in tries):
            return None
        allowed = torch.ones((len(tries), vocab), dtype=torch.bool)
        for row, (trie, prefix) in enumerate(zip(tries, prefixes)):
            if trie is None:
                continue
            tokens = trie.allowed_next_tokens(prefix)
            if tokens is None:
                blocked = getattr(trie, "blocked_tokens", None)
                if blocked is not None:
                    allowed[row, blocked(prefix)] = False
                continue
            allowed[row] = False
            allowed[row, tokens] = True
        return allowed.to(self.device)

    def _forward(self, **inputs: Any) -> Any:
        # `logits_to_keep` only saves work: callers slice logits from the end either way. The
        # check runs per call because the trainer may wrap `self.model` (LoRA) after __init__.
        parameters = inspect.signature(self.model.forward).parameters
        accepts = "logits_to_keep" in parameters or any(
            p.kind is p.VAR_KEYWORD for p in parameters.values()
        )
        if not accepts:
            inputs.pop("logits_to_keep", None)
        # transformers >= 5.2x renamed `past_key_values` to `cache` (the old name warns)
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        if "past_key_values" in inputs and "cache" in inspect.signature(base.forward).parameters:
            inputs["cache"] = inputs.pop("past_key_values")
        return self.model(**inputs)

    # ---- Policy interface ---------------------------------------------------------------

    @torch.no_grad()
    def generate(
        self,
        prompts: Sequence[str],
        admissible_actions: Sequence[Sequence[str] | None] | None = None,
        envs: Sequence[Any] | None = None,
        *,
        teacher_force: Sequence[tuple[str, str] | None] | None = None,
    ) -> list[Generation]:
        """Sample one response per prompt in one batch (see the module docstring).

        In constrained mode `admissible_actions` is required and each response is one of its
        row's actions (a row whose list is None is sampled free-form; a row with an empty
        list gets an empty `Generation` with `error` set). `envs` is ignored.

        `teacher_force` gives per prompt None or a ``(context, target)`` pair of texts that is
        teacher-forced right after the prompt from the prompt's own KV cache before sampling;
        the target tokens' log-probs land in `Generation.teacher_forced_logprobs`. They equal
        ``logprobs([prompt + context], [target], add_eos=False)`` whenever the prompt and
        context tokenise apart as they do together, for the cost of a few tokens instead of a
        second prefill (IGPO scores the answer after every prompt this way).
        """
        if not prompts:
            return []
        check_admissible(self.constrained, admissible_actions, len(prompts))
        tries = self._tries(admissible_actions, len(prompts))
        prompt_ids = [self.encode_prompt(prompt) for prompt in prompts]
        return self._generate_from_ids(prompt_ids, tries, teacher_force)

    @torch.no_grad()
    def generate_chat(
        self,
        conversations: Sequence[Any],
        admissible_actions: Sequence[Sequence[str] | None] | None = None,
        envs: Sequence[Any] | None = None,
        *,
        teacher_force: Sequence[tuple[str, str] | None] | None = None,
    ) -> list[Generation]:
        """Sample the next assistant message of each `Conversation`, reusing its KV cache.

        A conversation's first message is the system message; after each call the caller
        appends the assistant message (the returned text) and the next user message. Only the
        tokens added since the last call are prefilled. `Generation.prompt_ids` is the whole
        context the response was sampled after (a prefix of the next turn's, unless the
        `max_context_tokens` budget dropped old turns). Otherwise as `generate`.
        """
        if not conversations:
            return []
        check_admissible(self.constrained, admissible_actions, len(conversations), "conversation")
        chat = self.chat_tokens()
        tries = self._tries(admissible_actions, len(conversations))
        states = []
        for row, (conversation, trie) in enumerate(zip(conversations, tries)):
            if conversation.state is None:
                conversation.state = chat.start(conversation.messages[0])
            state: ChatState = conversation.state
            chat.sync(state, conversation.messages, self.eos_token_id)
            pair = teacher_force[row] if teacher_force is not None else None
            forced_tokens = 0 if pair is None else len(self._teacher_force_ids(*pair)[0])
            budget = self.max_new_tokens if trie is None else trie.max_length
            chat.fit(state, self.max_context_tokens, max(budget, forced_tokens))
            states.append(state)
        generations = self._generate_from_ids(
            [state.context() for state in states], tries, teacher_force, states
        )
        for state, generation in zip(states, generations):
            state.pending = list(generation.token_ids)
        return generations

    def chat_tokens(self) -> ChatTokens:
        """How this policy turns conversations into token pieces (its chat template)."""
        if self._chat is None:
            self._chat = ChatTokens(self.tokenizer, self.stop_token_ids, enable_thinking=self.think)
        return self._chat

    def _generate_from_ids(
        self,
        prompt_ids: list[list[int]],
        tries: list[Any],
        teacher_force: Sequence[tuple[str, str] | None] | None,
        chats: list[ChatState] | None = None,
    ) -> list[Generation]:
        generations = [Generation(text="", prompt_ids=list(ids)) for ids in prompt_ids]
        active = [i for i, trie in enumerate(tries) if trie is None or trie.size > 0]
        for i in set(range(len(prompt_ids))) - set(active):
            generations[i].error = "no admissible actions to choose from"
        if teacher_force is not None and len(teacher_force) != len(prompt_ids):
            raise ValueError(
                f"got {len(teacher_force)} teacher_force entries for {len(prompt_ids)} prompts; "
                "give one each"
            )
        forced = [
            None if pair is None else self._teacher_force_ids(*pair)
            for pair in (teacher_force if teacher_force is not None else [None] * len(prompt_ids))
        ]
        if active:
            self._sample_responses(
                [prompt_ids[i] for i in active],
                [tries[i] for i in active],
                [generations[i] for i in active],
                [forced[i] for i in active],
                None if chats is None else [chats[i] for i in active],
            )
        for generation, trie in zip(generations, tries):
            # A constrained sample is an admissible action: return the env's own spelling even
            # if the tokenizer's decode would normalise it.
            named = trie.action_for(generation.token_ids) if isinstance(trie, ActionTrie) else None
            generation.text = (
                named if named is not None else self.decode_response(generation.token_ids)
            )
        return generations

    def _teacher_force_ids(self, context: str, target: str) -> tuple[list[int], int]:
        """Ids of ``context + target`` as `logprobs` tokenises them, and the target's length."""
        context_ids = self.encode_response(context, add_eos=False) if context else []
        target_ids = self.encode_response(target, add_eos=False)
        return context_ids + target_ids, len(target_ids)

    # the decoding loop (decoding.py) and teacher-forced scoring and hidden states (scoring.py):
    # plain functions of the policy
    _sample_responses = decoding.sample_responses
    score = scoring.score
    score_spans = scoring.score_spans
    forced_tokens = scoring.forced_tokens
    logprobs = scoring.logprobs
    hidden_states = scoring.hidden_states

    def __repr__(self) -> str:
        name = getattr(self.model.config, "_name_or_path", "") or type(self.model).__name__
        return (
            f"HFPolicy({name!r}, device={self.device}, temperature={self.temperature}, "
            f"top_p={self.top_p}, "
            f"constrained={self.constrained})"
        )
