"""matplotlib.pyplot stand-in: figure/plot/title/... draw nothing and return a stand-in
object that takes any further call (`fig.add_subplot(111).matshow(m)`), savefig writes an
empty file (see the package docstring)."""


def savefig(fname, *args, **kwargs):
    with open(fname, "wb"):
        pass


class Stub:
    """A figure, axes, image...: every attribute is a call that draws nothing."""

    def __call__(self, *args, **kwargs):
        return Stub()

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return Stub()


def _nothing(*args, **kwargs):
    return Stub()


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    return _nothing
