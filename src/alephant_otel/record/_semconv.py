"""GenAI semantic-convention values derived once per path or provider prefix.

The gateway names models ``provider/model`` with its own provider prefixes
(``google``, ``bedrock``, ``mistral``); the conventions define well-known
``gen_ai.provider.name`` values (``gcp.gemini``, ``aws.bedrock``,
``mistral_ai``). And ``/responses`` and ``/chat/completions`` are both
``chat`` operations, told apart by ``openai.api.type``. Both are worked out
in functions whose results are cached by their callers, so a request pays a
cache hit, not the mapping.

The names and values are checked against the vendored semconv model in
``tests/fixtures/semconv`` (see ``tests/test_semconv.py``).
"""

from __future__ import annotations

import functools
from typing import Final

__all__ = ["api_type_for_path", "well_known_provider"]

#: Gateway/LiteLLM-style provider prefixes -> the conventions' well-known ``gen_ai.provider.name``.
#: A prefix not listed is kept as it is (the conventions allow other values).
WELL_KNOWN_PROVIDERS: Final = {
    "google": "gcp.gemini",
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "vertex": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
    "aws": "aws.bedrock",
    "azure": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "mistral": "mistral_ai",
    "mistralai": "mistral_ai",
    "xai": "x_ai",
    "x-ai": "x_ai",
    "watsonx": "ibm.watsonx.ai",
    "ibm": "ibm.watsonx.ai",
}

#: API path (after ``/v1``) -> ``openai.api.type``.
_API_TYPES: Final = {"/chat/completions": "chat_completions", "/responses": "responses"}


def well_known_provider(prefix: str) -> str:
    """The conventions' name for a lower-case provider prefix (itself when none is defined)."""
    return WELL_KNOWN_PROVIDERS.get(prefix, prefix)


@functools.lru_cache(maxsize=1024)
def api_type_for_path(path: str) -> str | None:
    """``openai.api.type`` for an OpenAI-style path: ``chat_completions``, ``responses``, else None."""
    query = path.find("?")
    if query >= 0:
        path = path[:query]
    i = path.rfind("/v1/")
    return None if i < 0 else _API_TYPES.get(path[i + 3 :].rstrip("/"))
