"""Checks of a function's settings at its door: a wrong type or value raises SettingError
naming the argument, the value and what was expected, before anything is built. The gin
command lines translate the argument into the `--gin.MACRO` flag that set it."""
import operator
from typing import Any, Mapping, Optional, Sequence


class SettingError(ValueError):
  """`name` (an argument of `function`) got `value`; `expected` says what it takes."""

  def __init__(self, function: str, name: str, value: Any, expected: str):
    self.function, self.name, self.value, self.expected = function, name, value, expected
    super().__init__(f"{function}: {name}={value!r}: expected {expected}")


def _integer(value: Any) -> Optional[int]:
  if isinstance(value, (bool, float, str, bytes)):
    return None
  try:
    return operator.index(value)
  except TypeError:
    return None


def integer(function: str, name: str, value: Any, *, minimum: Optional[int] = None,
            optional: bool = False) -> Optional[int]:
  """`value` as an int (numpy ints too; never a float, string or bool), >= `minimum`."""
  if value is None and optional:
    return None
  number = _integer(value)
  if number is None or (minimum is not None and number < minimum):
    what = {None: "an integer", 0: "a non-negative integer", 1: "a positive integer"}.get(
        minimum, f"an integer >= {minimum}")
    raise SettingError(function, name, value, what + (" or None" if optional else ""))
  return number


def positive_number(function: str, name: str, value: Any, *, optional: bool = False
                    ) -> Optional[float]:
  """`value` as a float > 0 (an int or a float; never a string or bool)."""
  if value is None and optional:
    return None
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
    raise SettingError(function, name, value,
                       "a positive number" + (" or None" if optional else ""))
  return float(value)


def integers(function: str, name: str, values: Any, *, minimum: Optional[int] = None,
             length: Optional[int] = None) -> Sequence[int]:
  """A sequence of ints, each >= `minimum` (and `length` of them, if given)."""
  if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__iter__"):
    raise SettingError(function, name, values, "a sequence of integers")
  values = list(values)
  if length is not None and len(values) != length:
    raise SettingError(function, name, values, f"{length} integers")
  for v in values:
    integer(function, name, v, minimum=minimum)
  return [int(v) for v in values]


def feature_lengths(function: str, name: str, value: Any,
                    keys: Sequence[str] = ("inputs", "targets")) -> Mapping[str, int]:
  """A mapping with a positive int for each of `keys`."""
  if not isinstance(value, Mapping) or any(k not in value for k in keys):
    raise SettingError(function, name, value,
                       "a mapping like {" + ", ".join(f"'{k}': 64" for k in keys) + "}")
  for k in keys:
    if _integer(value[k]) is None or value[k] < 1:
      raise SettingError(function, f"{name}[{k!r}]", value[k], "a positive integer")
  return value
