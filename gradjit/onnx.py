"""torch.onnx for gradjit: importable (scripts import it at the top and use it behind a flag);
exporting is not implemented."""
from gradjit._missing import missing_names

__all__ = ["export"]


def export(*args, **kwargs):
    """Not implemented: gradjit has no ONNX exporter."""
    raise NotImplementedError("gradjit does not implement torch.onnx.export")


__getattr__ = missing_names("torch.onnx", __name__)
