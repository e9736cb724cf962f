"""The analysts a user may pick: the built-in one and every configured OpenAI-compatible LLM provider.

`ANALYZER_LLM_PROVIDERS` lists the LLM providers (JSON); `ANALYZER_OPENAI_*` still describe one provider named
`openai`, present when `ANALYZER_LLM_PROVIDER=openai` or `ANALYZER_OPENAI_API_KEY` is set. A key is never
written in the settings list itself: each provider names the environment variable that holds it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

from analyzer import conf

BUILTIN = "builtin"
BUILTIN_LABEL = "Built-in analyst"
BUILTIN_CAN = ("Offline, instant and free. Counts, sums and averages with filters and groups, top and bottom "
               "rows, min/max with their row, distinct and missing values, correlation, shares, histograms, "
               "scatter plots, trends and seasonality; your own SELECT. Asks back when a question is unclear.")
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    label: str
    base_url: str
    model: str
    api_key_env: str = ""
    send_rows: bool = True  # sample rows and query results go to the model; False: schema and profile only
    builtin_first: bool = True  # the built-in analyst answers the questions it is sure of
    timeout: float = 60.0
    max_retries: int = 2
    stream_usage: bool = True  # ask for the usage chunk (stream_options.include_usage)
    description: str = ""

    @property
    def api_key(self) -> str:
        if self.name == "openai" and not self.api_key_env:
            return conf.OPENAI_API_KEY or ""
        return os.environ.get(self.api_key_env, "") if self.api_key_env else ""

    @property
    def key_source(self) -> str:
        return self.api_key_env or ("ANALYZER_OPENAI_API_KEY" if self.name == "openai" else "")

    def can(self) -> str:
        what = self.description or f"The LLM {self.model}"
        rows = ("sees the schema, the column profile, a few sample rows and the results of its queries"
                if self.send_rows else "sees only the schema and the column profile, never a row of the file")
        first = " The built-in analyst still answers first when it is sure of a question." if self.builtin_first else ""
        return (f"{what}: free-form questions, explanations and charts the built-in analyst cannot read. It {rows}; "
                f"its answers take longer and count against your daily token budget.{first}")


def _from_entry(entry: dict) -> ProviderConfig:
    if not isinstance(entry, dict):
        raise ImproperlyConfigured("ANALYZER_LLM_PROVIDERS must be a JSON list of objects.")
    name = str(entry.get("name") or "").strip().lower()
    if not NAME.match(name) or name == BUILTIN:
        raise ImproperlyConfigured(f"ANALYZER_LLM_PROVIDERS: invalid provider name {name!r} "
                                   "(lower-case letters, digits, - and _; not 'builtin').")
    for required in ("base_url", "model"):
        if not str(entry.get(required) or "").strip():
            raise ImproperlyConfigured(f"ANALYZER_LLM_PROVIDERS: provider {name!r} needs a {required}.")
    unknown = set(entry) - {"name", "label", "base_url", "model", "api_key_env", "send_rows", "builtin_first",
                            "timeout", "max_retries", "stream_usage", "description"}
    if unknown:
        raise ImproperlyConfigured(f"ANALYZER_LLM_PROVIDERS: provider {name!r} has unknown keys {sorted(unknown)}.")
    return ProviderConfig(
        name=name,
        label=str(entry.get("label") or f"{entry['model']} ({name})")[:80],
        base_url=str(entry["base_url"]).rstrip("/"),
        model=str(entry["model"]),
        api_key_env=str(entry.get("api_key_env") or ""),
        send_rows=bool(entry.get("send_rows", True)),
        builtin_first=bool(entry.get("builtin_first", True)),
        timeout=float(entry.get("timeout", conf.OPENAI_TIMEOUT_SECONDS)),
        max_retries=int(entry.get("max_retries", conf.OPENAI_MAX_RETRIES)),
        stream_usage=bool(entry.get("stream_usage", True)),
        description=str(entry.get("description") or "")[:300],
    )


def providers_configured() -> list[ProviderConfig]:
    """Every configured LLM provider, in the order of the settings."""
    configs = [_from_entry(entry) for entry in (conf.LLM_PROVIDERS or [])]
    if (conf.LLM_PROVIDER or "").lower() == "openai" or conf.OPENAI_API_KEY:
        if not any(c.name == "openai" for c in configs):
            configs.insert(0, ProviderConfig(
                name="openai", label=f"{conf.OPENAI_MODEL} (openai)", base_url=conf.OPENAI_BASE_URL.rstrip("/"),
                model=conf.OPENAI_MODEL, send_rows=conf.LLM_SEND_ROWS, builtin_first=conf.LLM_BUILTIN_FIRST,
                timeout=conf.OPENAI_TIMEOUT_SECONDS, max_retries=conf.OPENAI_MAX_RETRIES))
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise ImproperlyConfigured(f"ANALYZER_LLM_PROVIDERS: provider names repeat: {names}.")
    return configs


def provider_config_get(name: str) -> ProviderConfig | None:
    return next((c for c in providers_configured() if c.name == name), None)


def analyst_default() -> str:
    """The analyst a question goes to when the user picked none: ANALYZER_LLM_PROVIDER when configured."""
    wanted = (conf.LLM_PROVIDER or BUILTIN).lower()
    return wanted if provider_config_get(wanted) else BUILTIN


def analyst_label(name: str) -> str:
    if not name or name == BUILTIN:
        return BUILTIN_LABEL
    config = provider_config_get(name)
    return config.label if config else name


def analysts_available() -> list[dict]:
    """What the session page lists before the first question: each analyst, what it can do, the default."""
    default = analyst_default()
    analysts = [{"name": BUILTIN, "label": BUILTIN_LABEL, "kind": "builtin", "can": BUILTIN_CAN,
                 "default": default == BUILTIN}]
    for config in providers_configured():
        analysts.append({"name": config.name, "label": config.label, "kind": "llm", "can": config.can(),
                         "model": config.model, "sends_rows": config.send_rows, "default": default == config.name})
    return analysts
