"""matplotlib.pyplot stand-in: figure/plot/title/... do nothing, savefig writes an empty
file (see the package docstring)."""


def savefig(fname, *args, **kwargs):
    with open(fname, "wb"):
        pass


def _nothing(*args, **kwargs):
    return None


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    return _nothing
