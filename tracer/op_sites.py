"""A memoised op's key, Template and user line found by its call site, not recomputed.

A call of a memoised op (tracer/op_memo.py) computes its key (one part per argument, then
a hash), looks the key up and walks the stack for the user's line. A training loop makes
the same calls from the same places every step: the site (the chain of frames from the
op's entry up to the user's, each at the same instruction) with arguments of the same kinds
gives the same key, so the same Template, at the same user line.

So the first call at a site whose key has a Template notes, per argument, what the key said
of it: a Tensor's type and which earlier Tensor argument holds the same Expr; a Python
number's type and value. A later call whose frames are at the noted instructions and whose
arguments match all of that is given the noted Template and line without the key, the
lookup or the walk. Anything else (another op or chain at the site, an argument of another
kind, type or value, an alias changed, a keyword, a float that `==` cannot tell from
another: 0.0 and NaN, op_memo cleared since) takes the general path, which notes the site
again; a site that keeps changing (a loop over parameters inside one call of gradjit's
own) stops being noted after a few changes, and is tried again after _RETRY calls.
"""
from __future__ import annotations

from tracer import op_memo
from tracer.dtypes import _default_float, default_float
from tracer.errors import user_site
from tracer.tensor import Tensor

# _site_key(first frame and its caller) -> its sites, each (frame chain, op body,
# default float, argument specs, Template, user line, op_memo generation); or _UNSTABLE
_SITES: dict = {}
_SITES_LIMIT = 4096
_CHANGES: dict = {}          # the same key: how many sites it dropped for new ones
_MAX_CHANGES = 8
_PER_FRAME = 8
_UNSTABLE = ()
# notes refused at an _UNSTABLE key before it is tried again: gradjit's own frames (F.linear
# inside nn.Linear) are one key for every Linear of the process, so one that trained models
# of several sizes in turn lost the site path for all of them for good
_RETRY = 1024
_REFUSED: dict = {}          # _UNSTABLE key -> notes refused there since it was marked
_TENSOR = "tensor"
# calls given a noted site's Template, sites noted (the tests read these); ENABLED off: none
STATS = {"hits": 0, "noted": 0}
ENABLED = True
_KEY_OF = op_memo.key_of
_GENERATION = op_memo.GENERATION


def find(body, args: tuple, frame) -> tuple | None:
    """(Template, Tensor arguments, user line) for a call of the op body `body` on
    positional args whose first frame of gradjit's (the op's entry's caller) is `frame`:
    what op_memo.key_of, lookup and user_location would give (the site noted for next
    time). None when the key has no Template (not learnt, refused) or an argument is not a
    plain kind."""
    found = lookup(body, args, frame)
    if found is not None:
        return found
    keyed = op_memo.key_of(body, args, {})
    if keyed is None:
        return None
    hit = op_memo.lookup(keyed[0])
    if hit is None or op_memo.refused(hit):
        return None
    loc = note(body, args, frame, hit)
    if loc is None:                          # (not noted)
        found = user_site(frame)
        loc = found[3] if found is not None else None
    return hit, keyed[1], loc


def lookup(body, args: tuple, frame) -> tuple | None:
    """find's result from a site noted at frame, or None (not noted, or another call)."""
    sites = _SITES.get(_site_key(frame)) if ENABLED else None
    if sites and op_memo.key_of is _KEY_OF:      # (tests turn memoisation off by key_of)
        for site in sites:
            if site[1] is body:
                found = _match(site, args, frame)
                if found is not None:
                    STATS["hits"] += 1
                    return found
    return None


def note(body, args: tuple, frame, template) -> str | None:
    """Notes the site of a call whose key has `template` (found by the general path);
    returns the user's line, or None when not noted. Up to _PER_FRAME sites share a first
    frame (an operator's frame of gradjit's own, called from several user lines); past
    that each new one replaces the oldest, and a first frame that changed too often, or
    whose arguments cannot match, is marked _UNSTABLE (its calls then cost one dict
    lookup more) for its next _RETRY calls, then noted afresh."""
    site_key = _site_key(frame)
    sites = _SITES.get(site_key)
    if not ENABLED:
        return None
    if sites is _UNSTABLE:
        n = _REFUSED.get(site_key, 0) + 1
        if n < _RETRY:
            _REFUSED[site_key] = n
            return None
        del _REFUSED[site_key]               # tried again from here, changes counted anew
        _CHANGES.pop(site_key, None)
        sites = None
    specs = _specs(args)
    chain, loc = _chain(frame)
    if specs is None or loc is None:
        sites = _UNSTABLE
    else:
        site = (chain, body, default_float(), specs, template, loc, op_memo.GENERATION[0])
        sites = [] if sites is None else [x for x in sites
                                          if x[6] == op_memo.GENERATION[0]]
        if len(sites) >= _PER_FRAME:
            n = _CHANGES[site_key] = _CHANGES.get(site_key, 0) + 1
            sites = sites[1:] if n <= _MAX_CHANGES else _UNSTABLE
        if sites is not _UNSTABLE:
            sites.append(site)
    if len(_SITES) >= _SITES_LIMIT:
        _SITES.clear()
        _CHANGES.clear()
        _REFUSED.clear()
    _SITES[site_key] = sites
    STATS["noted"] += 1
    return loc


def _site_key(frame) -> tuple:
    """The first frame and its caller, each (id(code), instruction offset). The caller
    too: an operator's frame of gradjit's is the first frame of every user line that calls
    it, and keyed alone, a program with more than _PER_FRAME such lines turned it
    _UNSTABLE for good after a few changes (the test suite did)."""
    back = frame.f_back
    if back is None:
        return id(frame.f_code), frame.f_lasti
    return id(frame.f_code), frame.f_lasti, id(back.f_code), back.f_lasti


def _chain(frame) -> tuple:
    """((code, instruction offset) per frame from frame up to the user's, inclusive), and
    the user's line; (None, None) when no user frame is found."""
    found = user_site(frame)
    if found is None:
        return None, None
    chain = []
    for _ in range(len(found[0]) + 1):
        chain.append((frame.f_code, frame.f_lasti))
        frame = frame.f_back
    return tuple(chain), found[3]


def _specs(args: tuple) -> tuple | None:
    """Per argument what its key part says: (_TENSOR, type, alias) or (type, value)."""
    specs, exprs = [], []
    for a in args:
        t = type(a)
        if t is Tensor or isinstance(a, Tensor):     # (nn.Parameter: a subclass)
            e = a._expr
            alias = next((i for i, x in enumerate(exprs) if x is e), len(exprs))
            specs.append((_TENSOR, e.value.type, alias))
            exprs.append(e)
        elif t is float:
            if a != a or a == 0.0:
                return None                  # NaN, -0.0: `==` does not tell their bits
            specs.append((t, a, None))
        elif t is int or t is bool or t is str or a is None:
            specs.append((t, a, None))       # (as key_of: 1 is not 1.0 is not True)
        else:
            return None
    return tuple(specs)


def _match(site: tuple, args: tuple, frame) -> tuple | None:
    """(Template, Tensor arguments, line) when the call is the site's noted one, else None."""
    chain, _, dtype, specs, template, loc, generation = site
    if len(args) != len(specs) or generation != _GENERATION[0] or \
            dtype != _default_float[0]:
        return None
    for code, lasti in chain:
        if frame is None or frame.f_code is not code or frame.f_lasti != lasti:
            return None
        frame = frame.f_back
    tensors: list = []
    for a, (kind, want, alias) in zip(args, specs):
        if kind is _TENSOR:
            if type(a) is not Tensor and not isinstance(a, Tensor):
                return None
            e = a._expr
            got = e.value.type
            if e.symbolic or got is not want and got != want:
                return None
            n = len(tensors)
            if alias == n:                       # no earlier argument holds the same Expr
                for x in tensors:
                    if x._expr is e:
                        return None
            elif tensors[alias]._expr is not e:
                return None
            tensors.append(a)
        elif type(a) is not kind or a != want:
            return None
    return template, tensors, loc
