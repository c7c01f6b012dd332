"""Settings read from three layers, shared by the agent and the collector.

Highest priority first:

1. keyword arguments (the CLI, tests);
2. environment variables ``<ENV_PREFIX><FIELD>`` (nested fields with ``__``);
3. one TOML file: the explicit path, else the ``CONFIG_ENV`` variable, else
   ``DEFAULT_CONFIG``; a missing *default* file is fine, a missing explicit
   one is an error;
4. the field defaults.

Every problem becomes the subclass's ``CONFIG_ERROR`` with one line per bad
field, so a daemon exits with a sentence instead of a traceback.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, TomlConfigSettingsSource

from agent.messages import _

# The TOML file of the load in progress: pydantic-settings builds its sources in
# a classmethod that cannot take per-call arguments.
_toml_file: ContextVar[Path | None] = ContextVar("courtguard_toml_file", default=None)


class LayeredSettings(BaseSettings):
    """Base of ``AgentSettings`` and ``CollectorSettings``; build them with ``load``."""

    CONFIG_ENV: ClassVar[str]
    DEFAULT_CONFIG: ClassVar[Path]
    CONFIG_ERROR: ClassVar[Callable[..., Exception]]
    WHAT: ClassVar[str]
    #: The commented example of every setting, named in the hint of a settings error.
    EXAMPLE: ClassVar[str]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _toml_file.get()
        if toml_file is None:
            return init_settings, env_settings
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file)

    @classmethod
    def config_path(cls, explicit: str | os.PathLike[str] | None) -> tuple[Path, bool]:
        """The TOML file to read, and whether it was named (and so must exist)."""
        if explicit:
            return Path(explicit), True
        from_env = os.environ.get(cls.CONFIG_ENV)
        if from_env:
            return Path(from_env), True
        return cls.DEFAULT_CONFIG, False

    @classmethod
    def load(cls, config: str | os.PathLike[str] | None = None, **overrides: Any) -> Self:
        """Read every layer; raise ``CONFIG_ERROR`` naming the file and each bad field."""
        path, explicit = cls.config_path(config)
        toml_file: Path | None = path
        try:
            tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            if explicit:
                raise cls.CONFIG_ERROR(
                    _("config file {path} does not exist; create it or drop --config/{env}")
                    .format(path=path, env=cls.CONFIG_ENV)
                ) from None
            toml_file = None
        except PermissionError as exc:
            raise cls.CONFIG_ERROR(
                _("config file {path} cannot be read: {reason}").format(
                    path=path, reason=exc.strerror),
                hint=_("run it as root (sudo), or make the file readable to this user"),
            ) from exc
        except OSError as exc:
            raise cls.CONFIG_ERROR(
                _("config file {path} cannot be read: {reason}").format(
                    path=path, reason=exc.strerror)
            ) from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise cls.CONFIG_ERROR(
                _("config file {path} is not valid TOML: {reason}").format(path=path, reason=exc),
                hint=_("compare it with the commented example {example}").format(
                    example=cls.EXAMPLE),
            ) from exc
        token = _toml_file.set(toml_file)
        try:
            return cls(**{key: value for key, value in overrides.items() if value is not None})
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            problems = "\n".join(
                f"  {'.'.join(str(part) for part in item['loc']) or _('(top level)')}: "
                + (_("unknown setting") if item["type"] == "extra_forbidden" else item["msg"])
                for item in errors
            )
            source = f"{toml_file}, " if toml_file else ""
            prefix = cls.model_config.get("env_prefix", "")
            raise cls.CONFIG_ERROR(
                _("invalid {what} settings (from {source}{prefix}* or arguments):\n{problems}")
                .format(what=cls.WHAT, source=source, prefix=prefix, problems=problems),
                hint=_("every setting, its meaning and its range is in the commented example "
                       "{example}").format(example=cls.EXAMPLE),
            ) from exc
        finally:
            _toml_file.reset(token)
