"""Bounds-check mode's checks of addresses fixed at compile time: the workspace layout of
codegen/emit.py (temporaries placed at constant offsets) and the reach of
codegen/vmath_trig_huge.py's table of 2/pi words. Neither can go wrong at run time, so they
are proved when the code is emitted: a layout or a table that would let an access leave its
memory is refused (CheckError) instead of compiled."""
from __future__ import annotations



class CheckError(Exception):
    """Code emitted in bounds-check mode formed an address it cannot check (codegen/bounds.py:
    through a CheckedBuilder), or a layout proved wrong here."""


def check_workspace_layout(spans: dict, lives: dict, header: int, region_offset: int,
                           region_bytes: int, total: int):
    """spans: temporary -> (offset, bytes); lives: temporary -> (first step, last step).
    Every temporary lies between the header and the regions' workspace, the regions'
    workspace inside the total, and two temporaries share bytes only if their lives do
    not overlap."""
    if region_offset + region_bytes > total:
        raise CheckError(f"workspace layout: the regions' {region_bytes} bytes at "
                         f"{region_offset} pass the workspace's {total}")
    order = sorted(spans, key=lambda t: spans[t][0])
    for t in order:
        offset, size = spans[t]
        if offset < header or offset + size > region_offset:
            raise CheckError(f"workspace layout: {size} bytes at {offset} for {t} leave "
                             f"the temporaries' span [{header}, {region_offset})")
    sized = [t for t in order if spans[t][1]]        # (an empty one holds no byte)
    for i, a in enumerate(sized):
        a_end = spans[a][0] + spans[a][1]
        for b in sized[i + 1:]:
            if spans[b][0] >= a_end:
                break                      # (sorted by offset: no later one overlaps a)
            if lives[a][0] <= lives[b][1] and lives[b][0] <= lives[a][1]:
                raise CheckError(f"workspace layout: {a} and {b} share bytes while both "
                                 "are live")


def check_table_reach(table_words: int, highest_word: int):
    """vmath_trig_huge's window reads words up to highest_word of a table of table_words."""
    if highest_word >= table_words:
        raise CheckError(f"vmath_trig_huge: the 2/pi window reaches word {highest_word} of "
                         f"a table of {table_words}")
