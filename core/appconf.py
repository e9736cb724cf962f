"""Settings of the platform's apps, in one style.

Each app declares its settings once in its `conf.py` (name, kind, default, and why); config/settings.py
reads them from the environment once, as Django settings `<PREFIX>_<NAME>`; code reads them from
Django's settings each time it uses one (`conf.MAX_FILE_BYTES`), so nothing is frozen at import and
tests override them with pytest-django's `settings` fixture (`settings.ETL_MAX_FILE_BYTES = 10`).

Imported by the settings module, so it must not read Django's settings at import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings


@dataclass(frozen=True)
class Setting:
    kind: str  # the django-environ reader: "str", "int", "float", "bool", "list"
    # The value when the variable is unset; a callable takes the platform's VAR_DIR (local folders).
    default: Any
    env: str = ""  # the variable's name, when it is not the setting's own
    clean: Callable[[Any], Any] | None = None  # turns the value into what code uses, and checks it


class AppSettings:
    """One app's declared settings; `__getattr__ = AppSettings(...).get` in its conf module."""

    def __init__(self, prefix: str, **declared: Setting):
        self.prefix = prefix
        self.declared = declared

    def setting_name(self, name: str) -> str:
        return f"{self.prefix}_{name}"

    def from_environment(self, env, *, var_dir: Path) -> dict[str, Any]:
        """The Django settings these declarations give under the current environment."""
        values = {}
        for name, setting in self.declared.items():
            default = setting.default(var_dir) if callable(setting.default) else setting.default
            reader = getattr(env, setting.kind)
            values[self.setting_name(name)] = reader(setting.env or self.setting_name(name), default=default)
        return values

    def get(self, name: str) -> Any:
        setting = self.declared.get(name)
        if setting is None:
            raise AttributeError(f"{self.prefix.lower()} has no setting {name}")
        value = getattr(settings, self.setting_name(name))
        return setting.clean(value) if setting.clean else value
