"""Argument checks for optimizers, schedules and the training loop.

A hyperparameter that is NaN, infinite or out of range does not fail loudly on its own: ``lr=nan``
turns every weight into NaN after one step, ``momentum=1.5`` makes the updates grow without end,
and a schedule with ``gamma=-0.5`` writes a negative learning rate. So every such argument is
checked when the object is built, and the error names the class, the argument, the value and
the allowed range::

    SGD: invalid momentum 1.5; expected a finite number in [0, 1)
"""

import math
import numbers


def _range_text(low, high, low_open, high_open):
    if high is None:
        return f"{'>' if low_open else '>='} {low:g}"
    if low is None:
        return f"{'<' if high_open else '<='} {high:g}"
    return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def check_number(owner, name, value, low=None, high=None, low_open=False, high_open=True):
    """Return ``value`` as a Python float, or raise naming ``owner`` (a class name) and ``name``.

    Args:
        owner: the class or function name written at the start of the error.
        name: the argument's name.
        value: a real number (int, float or NumPy scalar; not a bool, a string or None).
        low, high: the bounds of the allowed range; None means unbounded on that side.
        low_open, high_open: whether the bound itself is excluded (default: ``[low, high)``).

    NaN and infinities are always rejected.
    """
    text = "a finite number " + _range_text(low, high, low_open, high_open) if (low, high) != (None, None) \
        else "a finite number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{owner}: invalid {name} {value!r}; expected {text}")
    number = float(value)
    bad = not math.isfinite(number)
    if low is not None:
        bad = bad or number < low or (low_open and number == low)
    if high is not None:
        bad = bad or number > high or (high_open and number == high)
    if bad:
        raise ValueError(f"{owner}: invalid {name} {value!r}; expected {text}")
    return number


def check_int(owner, name, value, low=None):
    """Return ``value`` as a Python int (it must be integral, e.g. 3 or 3.0, and >= ``low``).

    ``2.7`` is an error rather than silently 2, and so are bools, strings and None.
    """
    text = "an integer" + ("" if low is None else f" >= {low}")
    integral = isinstance(value, numbers.Integral) or (isinstance(value, numbers.Real) and
                                                       math.isfinite(float(value)) and float(value).is_integer())
    if isinstance(value, bool) or not integral or (low is not None and int(value) < low):
        raise ValueError(f"{owner}: invalid {name} {value!r}; expected {text}")
    return int(value)


def check_unit_interval(owner, name, value):
    """``value`` in [0, 1), the range of momentum, dampening, alpha and the betas."""
    return check_number(owner, name, value, 0.0, 1.0)


def check_non_negative(owner, name, value):
    """``value`` >= 0 and finite (learning rates, weight decay, decay constants)."""
    return check_number(owner, name, value, 0.0)


def check_positive(owner, name, value):
    """``value`` > 0 and finite (eps, division factors)."""
    return check_number(owner, name, value, 0.0, low_open=True)


def check_bool(owner, name, value):
    """``value`` must be True or False (a string such as "false" would be truthy)."""
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        raise ValueError(f"{owner}: invalid {name} {value!r}; expected True or False")
    return bool(value)
