"""matplotlib.ticker stand-in: locators and formatters that do nothing."""
from matplotlib.pyplot import Stub


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    return Stub()
