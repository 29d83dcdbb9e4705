"""Record: a class of named fields, for codegen's plans, without dataclasses' import cost.

NOTE: @dataclass writes its methods as source and exec()s them when the class is created:
0.3-0.8 ms per class (2-core Zen 3), ~8 ms of importing codegen for its 14, which every
fresh process pays on its first compile. A Record subclass names its fields in `_fields`
(in order), plain defaults in `_defaults` and per-instance ones in `_factories` (a callable,
as dataclasses' default_factory):

    class Out(Record, frozen=True):
        _fields = ("index",)

frozen=True: equal and hashed by value (same class, same fields), fields never reassigned
(AttributeError), `replace(**changes)` a copy; else compared by identity, as
`@dataclass(eq=False)`.
"""
from __future__ import annotations


class Record:
    _fields: tuple = ()
    _defaults: dict = {}
    _factories: dict = {}
    _frozen = False

    def __init_subclass__(cls, frozen: bool = False, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._frozen = frozen
        if frozen:
            cls.__eq__ = Record._value_eq
            cls.__hash__ = Record._value_hash
            cls.__setattr__ = Record._refuse

    def __init__(self, *args, **kwargs):
        fields, name = self._fields, type(self).__name__
        if len(args) > len(fields):
            raise TypeError(f"{name} takes {len(fields)} arguments, got {len(args)}")
        values = dict(zip(fields, args))
        for key, value in kwargs.items():
            if key not in fields or key in values:
                raise TypeError(f"{name}: unexpected or repeated argument {key!r}")
            values[key] = value
        put = object.__setattr__
        for f in fields[len(args):]:
            if f in values:
                continue
            if f in self._factories:
                values[f] = self._factories[f]()
            elif f in self._defaults:
                values[f] = self._defaults[f]
            else:
                raise TypeError(f"{name} is missing argument {f!r}")
        for f in fields:
            put(self, f, values[f])

    def _values(self) -> tuple:
        return tuple(getattr(self, f) for f in self._fields)

    def _value_eq(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def _value_hash(self):
        return hash(self._values())

    def _refuse(self, name, value):
        raise AttributeError(f"cannot assign to field {name!r} of a frozen "
                             f"{type(self).__name__}")

    def replace(self, **changes):
        """A copy with some fields changed."""
        return type(self)(**{f: changes.get(f, getattr(self, f)) for f in self._fields})

    def __repr__(self) -> str:
        inner = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({inner})"
