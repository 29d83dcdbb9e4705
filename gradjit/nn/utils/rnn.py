"""torch.nn.utils.rnn for gradjit: pad_sequence, PackedSequence, pack_padded_sequence,
pad_packed_sequence, pack_sequence."""
from tracer.nn.packed import (PackedSequence, pack_padded_sequence, pack_sequence,  # noqa: F401
                              pad_packed_sequence)
from tracer.nn.utils import pad_sequence  # noqa: F401

from gradjit._missing import missing_names

__all__ = ["pad_sequence", "PackedSequence", "pack_padded_sequence", "pad_packed_sequence",
           "pack_sequence"]
__getattr__ = missing_names("torch.nn.utils.rnn", __name__)
