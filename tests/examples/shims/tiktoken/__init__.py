"""A stand-in for tiktoken (absent here): nanoGPT's sample.py imports it at the top but,
with the character-level meta.pkl of data/shakespeare_char, never encodes with it."""


def get_encoding(name):
    raise NotImplementedError(f"tiktoken stand-in: no {name!r} encoding here (only the import "
                              f"is stood in)")
