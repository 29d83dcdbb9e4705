"""torch.det, torch.inverse, torch.slogdet: the linalg functions as the torch namespace spells
them (the argument is `input`, where torch.linalg's is `A`)."""
from tracer.linalg.solves import det as _det, inv as _inv, slogdet as _slogdet


def det(input, *, out=None):
    """torch.det: linalg.det."""
    return _det(input, out=out)


def inverse(input, *, out=None):
    """torch.inverse: linalg.inv."""
    return _inv(input, out=out)


def slogdet(input, *, out=None):
    """torch.slogdet: linalg.slogdet."""
    return _slogdet(input, out=out)
