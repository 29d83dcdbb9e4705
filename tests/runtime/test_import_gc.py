"""`import gradjit` freezes what it made (gc.freeze): the cyclic collector's full scans skip
the import's long-lived objects (one such scan was ~17-20 ms of gmm's and lstm's cold first
call). Checked in fresh processes: the import's objects leave the collector's generations,
cycles made afterwards are still collected, and objects alive at the import that become a garbage
cycle later stay until gc.unfreeze() (the documented cost)."""
import gc
import json
import subprocess
import sys
import weakref

from tests.runtime.fresh import ROOT


def _fresh(script: str) -> dict:
    """The JSON a script prints as its last line, run in a new interpreter."""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_moves_its_objects_out_of_the_collectors_generations():
    got = _fresh(
        "import gc, json\n"
        "before = gc.get_freeze_count()\n"
        "import gradjit, ir.primitives\n"
        "tracked = {id(o) for o in gc.get_objects()}\n"
        "print(json.dumps({'before': before, 'frozen': gc.get_freeze_count(),\n"
        "    'tracked': len(tracked),\n"
        "    'gradjit_dict': id(gradjit.__dict__) in tracked,\n"
        "    'rules_dict': id(ir.primitives.__dict__) in tracked}))\n")
    assert got["before"] == 0
    assert got["frozen"] > 10_000              # the import's modules, classes and tables
    assert got["tracked"] < got["frozen"] // 10
    assert not got["gradjit_dict"] and not got["rules_dict"]


def test_a_cycle_made_after_the_import_is_still_collected():
    class Node:
        pass
    a, b = Node(), Node()
    a.other, b.other = b, a
    alive = weakref.ref(a)
    del a, b
    gc.collect()
    assert alive() is None


def test_a_cycle_alive_at_the_import_waits_for_unfreeze():
    got = _fresh(
        "import gc, json, weakref\n"
        "class Node: pass\n"
        "a, b = Node(), Node()\n"
        "a.other, b.other = b, a\n"
        "alive = weakref.ref(a)\n"
        "import gradjit\n"
        "del a, b\n"
        "gc.collect()\n"
        "frozen_alive = alive() is not None\n"
        "gc.unfreeze()\n"
        "gc.collect()\n"
        "print(json.dumps({'frozen_alive': frozen_alive, 'after_unfreeze': alive() is None}))\n")
    assert got == {"frozen_alive": True, "after_unfreeze": True}
