"""Declared hook options, checked when a hook is saved and when it is built.

Each hook kind lists its options with a type, a default and an optional check. An
unknown option or a value of the wrong type raises HookConfigError with a message
that names the option, so a typo never silently turns a rule off.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class HookConfigError(ValueError):
    """A hook's configuration is invalid."""


@dataclass(frozen=True)
class Option:
    """One option: its JSON type (str, int, float, bool, list, dict), default and check."""

    type: str
    default: Any = None
    required: bool = False
    choices: tuple[Any, ...] = ()
    help: str = ""
    check: Callable[[Any], None] | None = None


_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
}


class OptionsSpec:
    """The options of one hook kind."""

    def __init__(self, options: dict[str, Option]) -> None:
        self.options = options

    def names(self) -> list[str]:
        return sorted(self.options)

    def parse(self, raw: Any, kind: str) -> dict[str, Any]:
        """Return the options with defaults filled in, or raise HookConfigError."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise HookConfigError(
                f"The options of a {kind} hook must be a JSON object, "
                f"got {type(raw).__name__}."
            )
        unknown = sorted(set(raw) - set(self.options))
        if unknown:
            known = ", ".join(self.names()) or "none"
            raise HookConfigError(
                f"Unknown option {unknown[0]!r} for a {kind} hook; "
                f"known options: {known}."
            )
        parsed = {}
        for name, option in self.options.items():
            if name not in raw:
                if option.required:
                    raise HookConfigError(
                        f"Option {name!r} is required for a {kind} hook."
                    )
                parsed[name] = _copy(option.default)
                continue
            parsed[name] = _checked(raw[name], name, option, kind)
        return parsed


def _checked(value: Any, name: str, option: Option, kind: str) -> Any:
    kinds = _TYPES[option.type]
    if (
        isinstance(value, bool)
        and option.type != "bool"
        or not isinstance(value, kinds)
    ):
        raise HookConfigError(
            f"Option {name!r} of a {kind} hook must be of type {option.type}, "
            f"got {type(value).__name__}."
        )
    if option.choices:
        members = value if option.type == "list" else [value]
        for member in members:
            if member not in option.choices:
                allowed = ", ".join(str(choice) for choice in option.choices)
                raise HookConfigError(
                    f"Option {name!r} of a {kind} hook has the invalid value "
                    f"{member!r}; allowed: {allowed}."
                )
    if option.check is not None:
        try:
            option.check(value)
        except (ValueError, TypeError) as exc:
            raise HookConfigError(
                f"Option {name!r} of a {kind} hook is invalid: {exc}"
            ) from None
    return value


def _copy(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return type(value)(value)
    return value


def string_list(value: Any) -> None:
    """Check that value is a list of strings."""
    if not all(isinstance(item, str) for item in value):
        raise ValueError("every entry must be a string.")


def positive(value: Any) -> None:
    if value <= 0:
        raise ValueError(f"must be greater than 0, got {value}.")
