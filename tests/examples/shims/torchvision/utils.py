"""utils.save_image: writes an empty file (the examples save sample grids; nothing reads
them back), after checking it was given a Tensor as torchvision requires."""
import torch


def save_image(tensor, fp, *args, **kwargs):
    if not torch.is_tensor(tensor) and not isinstance(tensor, list):
        raise TypeError(f"tensor or list of tensors expected, got {type(tensor)}")
    with open(fp, "wb"):
        pass
