"""A stand-in for matplotlib (not installed here) so programs that only save plots run:
pytorch/examples time_sequence_prediction draws its predictions to PDFs. Every call is
accepted and draws nothing; savefig writes an empty file so the program's output exists."""


def use(backend, *args, **kwargs):
    return None
