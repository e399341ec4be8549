"""Is a Hugging Face hub id loadable now? Answered without importing torch or transformers.

Offline, huggingface_hub retries a download five times (about 30 s) before it fails; the
CLI and :func:`cl_prompts.backbones.load_backbone` ask here first and fail at once, in one
line that names the way out.
"""

from __future__ import annotations

import os
import threading

#: Seconds :func:`hub_reachable` waits for the hub before a hub id is read from the cache only.
HUB_PROBE_TIMEOUT = 2.0
# The names the library loads without the hub (cl_prompts.backbones.config).
LOCAL_NAMES = ("minilm", "smollm2")
TINY_PREFIX = "tiny-"


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT) -> bool:
    """Whether the Hugging Face hub answers within ``timeout`` seconds; False in offline mode
    (``HF_HUB_OFFLINE=1``).

    One request without retries; any answer counts, an error status too. It runs in a daemon
    thread, so a name lookup that hangs cannot hold the caller past ``timeout``.
    """
    from huggingface_hub import constants, is_offline_mode
    from huggingface_hub.utils import get_session

    if is_offline_mode():
        return False
    done, answered = threading.Event(), []

    def probe() -> None:
        try:
            get_session().head(constants.ENDPOINT, timeout=timeout)
            answered.append(True)
        except Exception:  # any failure (DNS, refused, timeout, proxy) means "not reachable"
            pass
        finally:
            done.set()

    threading.Thread(target=probe, name="cl-prompts-hub-probe", daemon=True).start()
    return done.wait(timeout) and bool(answered)


def offline_message(name: str) -> str:
    """The one line that says hub id ``name`` cannot be loaded now, and what to do instead."""
    from huggingface_hub import constants

    return (f"backbone {name!r} is not available offline: it is not a local folder, {constants.ENDPOINT} "
            f"does not answer and it is not in the Hugging Face cache ({constants.HF_HUB_CACHE}); "
            f"point --backbone (name_or_path) to a local model folder (config.json and *.safetensors, "
            f"e.g. written by save_pretrained) or use the offline default 'minilm'")


def unavailable_hub_id(name: str) -> str | None:
    """:func:`offline_message` for a hub id that is not a local name or folder, not cached
    and out of reach; None when it may load (the loader then says what else is wrong)."""
    if name in LOCAL_NAMES or name.startswith(TINY_PREFIX) or os.path.isdir(name):
        return None
    if os.path.isabs(name) or name.startswith((".", "~")) or name.count("/") > 1:
        return None  # a missing folder: the loader names it
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(name, "config.json"), str) or hub_reachable():
        return None
    return offline_message(name)
