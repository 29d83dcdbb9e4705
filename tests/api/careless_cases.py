# ruff: noqa: E501  (one program per line reads best)
"""Short programs that drive the module / optimizer / data / serialization layer carelessly
(issue 13's hostile-input round). Each is run with `torch`, `nn`, `F`, `np`, `tmp` (a fresh
directory) in scope and leaves its result in `out`; tests/api/careless_sweep.py runs them
and compares the outcome with PyTorch 2.13's (tests/api/recorded/careless.json)."""

CASES = {
    # ---- layers: wrong shapes, dtypes, ranks ---------------------------------------------
    "linear wrong in_features": "out = nn.Linear(4, 3)(torch.ones(2, 5))",
    "linear int input": "out = nn.Linear(4, 3)(torch.ones(2, 4, dtype=torch.long))",
    "linear f64 input": "out = nn.Linear(4, 3)(torch.ones(2, 4, dtype=torch.float64))",
    "linear 0-d input": "out = nn.Linear(1, 3)(torch.tensor(1.0))",
    "linear 1-d input": "torch.manual_seed(0)\nl = nn.Linear(2, 3)\n"
                        "out = l(torch.ones(2)) - (l.weight.sum(1) + l.bias)",
    "conv2d 3-d input": "torch.manual_seed(0)\nc = nn.Conv2d(2, 3, 3)\n"
                        "out = (c(torch.ones(2, 5, 5)) - c(torch.ones(1, 2, 5, 5))[0]).abs().max()",
    "conv2d wrong channels": "out = nn.Conv2d(2, 3, 3)(torch.ones(1, 4, 5, 5))",
    "conv2d 2-d input": "out = nn.Conv2d(2, 3, 3)(torch.ones(5, 5))",
    "conv2d kernel too big": "out = nn.Conv2d(2, 3, 7)(torch.ones(1, 2, 5, 5))",
    "conv1d 4-d input": "out = nn.Conv1d(2, 3, 3)(torch.ones(1, 2, 5, 5))",
    "batchnorm batch 1 train": "out = nn.BatchNorm1d(3)(torch.ones(1, 3))",
    "batchnorm batch 1 eval": "b = nn.BatchNorm1d(3).eval()\nout = b(torch.ones(1, 3))",
    "batchnorm2d 1x1 train": "out = nn.BatchNorm2d(3)(torch.ones(1, 3, 1, 1))",
    "batchnorm wrong channels": "out = nn.BatchNorm1d(3)(torch.ones(4, 5))",
    "batchnorm2d 3-d input": "out = nn.BatchNorm2d(3)(torch.ones(3, 4, 4))",
    "embedding out of range": "out = nn.Embedding(5, 2)(torch.tensor([1, 5]))",
    "embedding negative": "out = nn.Embedding(5, 2)(torch.tensor([-1]))",
    "embedding float indices": "out = nn.Embedding(5, 2)(torch.tensor([1.0, 2.0]))",
    "embedding padding_idx out of range": "out = nn.Embedding(5, 2, padding_idx=5)",
    "lstm wrong input size": "out = nn.LSTM(3, 4)(torch.ones(2, 1, 5))",
    "lstm wrong hidden shape": "m = nn.LSTM(3, 4)\nh = torch.zeros(1, 1, 5)\n"
                               "out = m(torch.ones(2, 1, 3), (h, h))",
    "lstm hidden not a tuple": "m = nn.LSTM(3, 4)\nout = m(torch.ones(2, 1, 3), torch.zeros(1, 1, 4))",
    "gru wrong hidden batch": "m = nn.GRU(3, 4)\nout = m(torch.ones(2, 1, 3), torch.zeros(1, 2, 4))",
    "gru 4-d input": "out = nn.GRU(3, 4)(torch.ones(2, 1, 3, 1))",
    "rnn wrong input size batch_first": "out = nn.RNN(3, 4, batch_first=True)(torch.ones(1, 2, 4))",
    "mha mask wrong shape": "m = nn.MultiheadAttention(4, 2)\nx = torch.ones(3, 1, 4)\n"
                            "out = m(x, x, x, attn_mask=torch.zeros(2, 2))",
    "mha mask int dtype": "m = nn.MultiheadAttention(4, 2)\nx = torch.ones(3, 1, 4)\n"
                          "out = m(x, x, x, attn_mask=torch.zeros(3, 3, dtype=torch.long))",
    "mha key padding wrong shape": "m = nn.MultiheadAttention(4, 2)\nx = torch.ones(3, 1, 4)\n"
                                   "out = m(x, x, x, key_padding_mask=torch.zeros(1, 2, dtype=torch.bool))",
    "mha embed not divisible": "out = nn.MultiheadAttention(5, 2)",
    "mha wrong embed": "m = nn.MultiheadAttention(4, 2)\nx = torch.ones(3, 1, 6)\nout = m(x, x, x)",
    "encoder layer mask wrong shape": "m = nn.TransformerEncoderLayer(4, 2, 8)\n"
                                      "out = m(torch.ones(3, 1, 4), src_mask=torch.zeros(2, 2))",
    "dropout p > 1": "out = nn.Dropout(1.5)",
    "dropout p < 0": "out = nn.Dropout(-0.1)",
    "functional dropout p > 1": "out = F.dropout(torch.ones(3), p=2.0)",
    "dropout p = 1": "out = nn.Dropout(1.0)(torch.ones(3))",
    "layernorm wrong shape": "out = nn.LayerNorm(4)(torch.ones(2, 3))",
    "maxpool2d kernel too big": "out = nn.MaxPool2d(4)(torch.ones(1, 1, 3, 3))",
    "flatten then linear wrong": "m = nn.Sequential(nn.Flatten(), nn.Linear(8, 2))\n"
                                 "out = m(torch.ones(2, 3, 3))",
    # ---- losses ----------------------------------------------------------------------------
    "ce float target wrong shape": "out = F.cross_entropy(torch.ones(2, 3), torch.ones(2, 4))",
    "ce float target ok": "x = torch.tensor([[1., 2, 3], [0, 1, 0]])\n"
                          "out = F.cross_entropy(x, torch.tensor([[.2, .3, .5], [1., 0, 0]]))",
    "ce class out of range": "out = F.cross_entropy(torch.ones(2, 3), torch.tensor([0, 3]))",
    "ce class negative": "out = F.cross_entropy(torch.ones(2, 3), torch.tensor([0, -2]))",
    "ce ignore_index": "x = torch.tensor([[1., 2, 3], [0, 1, 0]])\n"
                       "out = F.cross_entropy(x, torch.tensor([1, -100]))",
    "ce ignore_index all": "x = torch.tensor([[1., 2, 3], [0, 1, 0]])\n"
                           "out = F.cross_entropy(x, torch.tensor([-100, -100]))",
    "ce ignore_index custom": "x = torch.tensor([[1., 2, 3], [0, 1, 0]])\n"
                              "out = F.cross_entropy(x, torch.tensor([1, 2]), ignore_index=2)",
    "ce label_smoothing > 1": "out = F.cross_entropy(torch.ones(2, 3), torch.tensor([0, 1]), "
                              "label_smoothing=1.5)",
    "ce label_smoothing < 0": "out = F.cross_entropy(torch.ones(2, 3), torch.tensor([0, 1]), "
                              "label_smoothing=-0.1)",
    "ce label_smoothing ok": "x = torch.tensor([[1., 2, 3], [0, 1, 0]])\n"
                             "out = F.cross_entropy(x, torch.tensor([1, 0]), label_smoothing=0.2)",
    "ce label_smoothing negative values": "x = torch.tensor([[1., 2, 3], [0, 1, 0]])\n"
                                          "out = [F.cross_entropy(x, torch.tensor([1, 0]), label_smoothing=-0.5), "
                                          "F.cross_entropy(x, x.softmax(1), label_smoothing=-0.1)]",
    "ce 3-d target shape": "out = F.cross_entropy(torch.ones(2, 3, 4), torch.ones(2, 5).long())",
    "ce int probabilities": "out = F.cross_entropy(torch.ones(2, 3), torch.ones(2, 3).long())",
    "ce 1-d input 2 targets": "out = F.cross_entropy(torch.ones(3), torch.ones(2).long())",
    "linear f64 bias": "out = F.linear(torch.ones(2, 4), torch.ones(3, 4), torch.ones(3).double())",
    "linear 3-d f64 input": "out = F.linear(torch.ones(2, 2, 4).double(), torch.ones(3, 4))",
    "ce batch mismatch": "out = F.cross_entropy(torch.ones(2, 3), torch.tensor([0, 1, 2]))",
    "ce int32 target": "out = F.cross_entropy(torch.ones(2, 3), torch.tensor([0, 1], dtype=torch.int32))",
    "ce 1-d input": "out = F.cross_entropy(torch.tensor([1., 2, 3]), torch.tensor(1))",
    "ce int input": "out = F.cross_entropy(torch.ones(2, 3, dtype=torch.long), torch.tensor([0, 1]))",
    "mse broadcast": "import warnings\nwith warnings.catch_warnings(record=True) as w:\n"
                     "    warnings.simplefilter('always')\n"
                     "    v = F.mse_loss(torch.ones(3, 1), torch.zeros(3))\n"
                     "out = [v, len(w), str(w[0].message).split('.')[0] if w else '']",
    "mse int target": "out = F.mse_loss(torch.ones(3), torch.zeros(3, dtype=torch.long))",
    "nll 1-d": "out = F.nll_loss(torch.tensor([-1., -2, -3]), torch.tensor(1))",
    "nll 1-d batch target": "out = F.nll_loss(torch.tensor([-1., -2, -3]), torch.tensor([1]))",
    "nll out of range": "out = F.nll_loss(torch.ones(2, 3), torch.tensor([0, 5]))",
    "bce target > 1": "out = F.binary_cross_entropy(torch.tensor([0.5, 0.2]), torch.tensor([1.5, 0.]))",
    "bce input > 1": "out = F.binary_cross_entropy(torch.tensor([1.5, 0.2]), torch.tensor([1., 0.]))",
    "bce input < 0": "out = F.binary_cross_entropy(torch.tensor([-0.5, 0.2]), torch.tensor([1., 0.]))",
    "bce shape mismatch": "out = F.binary_cross_entropy(torch.tensor([0.5, 0.2]), torch.tensor([[1., 0.]]))",
    "bce int target": "out = F.binary_cross_entropy(torch.tensor([0.5, 0.2]), torch.tensor([1, 0]))",
    "bce input 0 target 1": "out = F.binary_cross_entropy(torch.tensor([0., 1.]), torch.tensor([1., 0.]))",
    "bce with logits shape mismatch": "out = F.binary_cross_entropy_with_logits(torch.ones(2), "
                                      "torch.ones(3))",
    "l1 shape mismatch": "out = F.l1_loss(torch.ones(2, 3), torch.ones(3, 3))",
    "CrossEntropyLoss bad reduction": "out = nn.CrossEntropyLoss(reduction='avg')(torch.ones(2, 3), "
                                      "torch.tensor([0, 1]))",
    "mse bad reduction": "out = F.mse_loss(torch.ones(2), torch.ones(2), reduction='avg')",
    # ---- optimizers ----------------------------------------------------------------------
    "opt param listed twice": "import warnings\nw = nn.Parameter(torch.ones(2))\n"
                              "with warnings.catch_warnings(record=True) as ws:\n"
                              "    warnings.simplefilter('always')\n"
                              "    o = torch.optim.SGD([w, w], lr=0.1)\n"
                              "out = [len(o.param_groups[0]['params']), len(ws), "
                              "str(ws[0].message).split(';')[0] if ws else '']",
    "opt param listed twice step": "import warnings\nwarnings.simplefilter('ignore')\nw = nn.Parameter(torch.ones(2))\n"
                                   "o = torch.optim.SGD([w, w], lr=0.1, momentum=0.5)\n"
                                   "for _ in range(2):\n    o.zero_grad()\n    (w * w).sum().backward()\n    o.step()\nout = w",
    "scheduler after optimizer": "import warnings\nw = nn.Parameter(torch.ones(2))\n"
                                 "o = torch.optim.SGD([w], lr=0.1)\ns = torch.optim.lr_scheduler.StepLR(o, 1, gamma=0.5)\n"
                                 "with warnings.catch_warnings(record=True) as ws:\n"
                                 "    warnings.simplefilter('always')\n"
                                 "    for _ in range(3):\n        (w * w).sum().backward()\n        o.step()\n        s.step()\n"
                                 "out = [len(ws), o.param_groups[0]['lr'], w]",
    "opt empty list": "out = torch.optim.SGD([], lr=0.1)",
    "opt empty generator": "out = torch.optim.Adam(nn.Sequential().parameters())",
    "opt lr < 0": "out = torch.optim.SGD([nn.Parameter(torch.ones(2))], lr=-0.1)",
    "adam lr < 0": "out = torch.optim.Adam([nn.Parameter(torch.ones(2))], lr=-0.1)",
    "adam betas out of range": "out = torch.optim.Adam([nn.Parameter(torch.ones(2))], betas=(1.0, 0.9))",
    "adam beta2 negative": "out = torch.optim.Adam([nn.Parameter(torch.ones(2))], betas=(0.9, -0.1))",
    "adam eps < 0": "out = torch.optim.Adam([nn.Parameter(torch.ones(2))], eps=-1.0)",
    "adam wd < 0": "out = torch.optim.Adam([nn.Parameter(torch.ones(2))], weight_decay=-1.0)",
    "sgd momentum < 0": "out = torch.optim.SGD([nn.Parameter(torch.ones(2))], lr=0.1, momentum=-1)",
    "sgd nesterov no momentum": "out = torch.optim.SGD([nn.Parameter(torch.ones(2))], lr=0.1, "
                                "nesterov=True)",
    "rmsprop alpha < 0": "out = torch.optim.RMSprop([nn.Parameter(torch.ones(2))], alpha=-1)",
    "opt non-leaf param": "w = torch.ones(2, requires_grad=True) * 2\n"
                          "out = torch.optim.SGD([w], lr=0.1)",
    "opt param a tensor": "out = torch.optim.SGD(torch.ones(2, requires_grad=True), lr=0.1)",
    "opt param an int": "out = torch.optim.SGD([1], lr=0.1)",
    "opt param in two groups": "w = nn.Parameter(torch.ones(2))\n"
                               "out = torch.optim.SGD([{'params': [w]}, {'params': [w]}], lr=0.1)",
    "add_param_group overlap": "w = nn.Parameter(torch.ones(2))\no = torch.optim.SGD([w], lr=0.1)\n"
                               "out = o.add_param_group({'params': [w]})",
    "add_param_group ok": "w = nn.Parameter(torch.ones(2))\nv = nn.Parameter(torch.ones(1))\n"
                          "o = torch.optim.SGD([w], lr=0.1)\no.add_param_group({'params': v, 'lr': 0.5})\n"
                          "out = [len(o.param_groups), o.param_groups[1]['lr'], "
                          "o.param_groups[1]['momentum']]",
    "add_param_group no lr": "w = nn.Parameter(torch.ones(2))\nv = nn.Parameter(torch.ones(1))\n"
                             "o = torch.optim.SGD([w])\nout = o.param_groups[0]['lr']",
    "load_state_dict wrong groups": "a = nn.Parameter(torch.ones(2))\nb = nn.Parameter(torch.ones(2))\n"
                                    "o1 = torch.optim.SGD([a, b], lr=0.1)\no2 = torch.optim.SGD([a], lr=0.1)\n"
                                    "out = o2.load_state_dict(o1.state_dict())",
    "load_state_dict wrong group count": "a = nn.Parameter(torch.ones(2))\nb = nn.Parameter(torch.ones(2))\n"
                                         "o1 = torch.optim.SGD([{'params': [a]}, {'params': [b]}], lr=0.1)\n"
                                         "o2 = torch.optim.SGD([a, b], lr=0.1)\n"
                                         "out = o2.load_state_dict(o1.state_dict())",
    "step before backward": "w = nn.Parameter(torch.ones(2))\no = torch.optim.Adam([w], lr=0.1)\n"
                            "o.step()\nout = [w, len(o.state)]",
    "sgd step before backward": "w = nn.Parameter(torch.ones(2))\no = torch.optim.SGD([w], lr=0.1, momentum=0.9)\n"
                                "o.step()\nout = [w, len(o.state)]",
    "zero_grad set_to_none False": "w = nn.Parameter(torch.ones(2))\no = torch.optim.SGD([w], lr=0.1)\n"
                                   "(w * 3).sum().backward()\no.zero_grad(set_to_none=False)\n"
                                   "out = [w.grad, w.grad is None]",
    "zero_grad default": "w = nn.Parameter(torch.ones(2))\no = torch.optim.SGD([w], lr=0.1)\n"
                         "(w * 3).sum().backward()\no.zero_grad()\nout = [w.grad is None]",
    "scheduler before optimizer": "import warnings\nw = nn.Parameter(torch.ones(2))\n"
                                  "o = torch.optim.SGD([w], lr=0.1)\ns = torch.optim.lr_scheduler.StepLR(o, 1)\n"
                                  "with warnings.catch_warnings(record=True) as ws:\n"
                                  "    warnings.simplefilter('always')\n"
                                  "    s.step()\n"
                                  "out = [len(ws), str(ws[0].message).split('.')[0] if ws else '', "
                                  "o.param_groups[0]['lr']]",
    "clip nan grad": "w = nn.Parameter(torch.ones(2))\nw.grad = torch.tensor([float('nan'), 1.])\n"
                     "n = torch.nn.utils.clip_grad_norm_([w], 1.0)\nout = [n.isnan(), w.grad.isnan()]",
    "clip inf grad": "w = nn.Parameter(torch.ones(2))\nw.grad = torch.tensor([float('inf'), 1.])\n"
                     "n = torch.nn.utils.clip_grad_norm_([w], 1.0)\nout = [n, w.grad.isnan()]",
    "clip error_if_nonfinite": "w = nn.Parameter(torch.ones(2))\nw.grad = torch.tensor([float('nan'), 1.])\n"
                               "out = torch.nn.utils.clip_grad_norm_([w], 1.0, error_if_nonfinite=True)",
    "clip no grads": "w = nn.Parameter(torch.ones(2))\nout = torch.nn.utils.clip_grad_norm_([w], 1.0)",
    "clip a tensor": "w = nn.Parameter(torch.ones(2))\nw.grad = torch.tensor([3., 4.])\n"
                     "n = torch.nn.utils.clip_grad_norm_(w, 1.0)\nout = [n, w.grad]",
    "clip inf norm": "w = nn.Parameter(torch.ones(2))\nw.grad = torch.tensor([3., -4.])\n"
                     "n = torch.nn.utils.clip_grad_norm_(w, 1.0, norm_type='inf')\nout = [n, w.grad]",
    "clip_grad_value_": "w = nn.Parameter(torch.ones(2))\nw.grad = torch.tensor([3., -4.])\n"
                        "torch.nn.utils.clip_grad_value_(w, 1.0)\nout = w.grad",
    # ---- modules ---------------------------------------------------------------------------
    "load_state_dict missing key": "m = nn.Linear(2, 3)\nsd = m.state_dict()\ndel sd['bias']\n"
                                   "out = m.load_state_dict(sd)",
    "load_state_dict unexpected key": "m = nn.Linear(2, 3)\nsd = m.state_dict()\nsd['extra'] = torch.ones(1)\n"
                                      "out = m.load_state_dict(sd)",
    "load_state_dict shape mismatch": "m = nn.Linear(2, 3)\nout = m.load_state_dict(nn.Linear(3, 3).state_dict())",
    "load_state_dict strict False": "m = nn.Linear(2, 3)\nsd = m.state_dict()\ndel sd['bias']\n"
                                    "sd['extra'] = torch.ones(1)\nr = m.load_state_dict(sd, strict=False)\n"
                                    "out = [r.missing_keys, r.unexpected_keys, list(r)]",
    "load_state_dict strict False shape": "m = nn.Linear(2, 3)\n"
                                          "out = m.load_state_dict(nn.Linear(3, 3).state_dict(), strict=False)",
    "load_state_dict ok return": "m = nn.Linear(2, 3)\nr = m.load_state_dict(nn.Linear(2, 3).state_dict())\n"
                                 "out = [str(r)]",
    "load_state_dict not a dict": "out = nn.Linear(2, 3).load_state_dict([1, 2])",
    "register_buffer dotted": "m = nn.Module()\nout = m.register_buffer('a.b', torch.ones(1))",
    "register_buffer empty": "m = nn.Module()\nout = m.register_buffer('', torch.ones(1))",
    "register_buffer not tensor": "m = nn.Module()\nout = m.register_buffer('a', 3)",
    "register_buffer existing attr": "m = nn.Module()\nm.a = 1\nout = m.register_buffer('a', torch.ones(1))",
    "register_parameter tensor": "m = nn.Module()\nout = m.register_parameter('a', torch.ones(1))",
    "tensor over parameter": "m = nn.Linear(2, 3)\nm.weight = torch.ones(3, 2)",
    "tensor over parameter ok": "m = nn.Linear(2, 3)\nm.weight = nn.Parameter(torch.ones(3, 2))\n"
                                "out = m(torch.ones(1, 2)) - m.bias",
    "none over parameter": "m = nn.Linear(2, 3)\nm.bias = None\nout = [m.bias is None, len(list(m.parameters()))]",
    "requires_grad_ module": "m = nn.Linear(2, 3)\nm.requires_grad_(False)\n"
                             "out = [p.requires_grad for p in m.parameters()]",
    "shared parameters": "a = nn.Linear(2, 2)\nm = nn.Sequential(a, a)\n"
                         "out = [[n for n, _ in m.named_parameters()], len(list(m.parameters())), "
                         "list(m.state_dict())]",
    "shared parameters remove_duplicate": "a = nn.Linear(2, 2)\nm = nn.Sequential(a, a)\n"
                                          "out = [n for n, _ in m.named_parameters(remove_duplicate=False)]",
    "state_dict after double": "m = nn.Linear(2, 3).to(torch.float64)\n"
                               "out = [str(v.dtype) for v in m.state_dict().values()]",
    "load f32 into f64": "m = nn.Linear(2, 3).double()\nsrc = nn.Linear(2, 3)\nm.load_state_dict(src.state_dict())\n"
                         "out = [str(m.weight.dtype), (m.weight - src.weight.double()).abs().max()]",
    "module call missing arg": "out = nn.Linear(2, 3)()",
    "sequential index out of range": "out = nn.Sequential(nn.ReLU())[3]",
    "modulelist append non module": "out = nn.ModuleList().append(3)",
    "module setattr int": "m = nn.Linear(2, 3)\nm.in_features = 5\nx = torch.ones(1, 2)\n"
                         "out = (m(x) - (x @ m.weight.T + m.bias)).abs().max()",
    "getattr missing": "out = nn.Linear(2, 3).weights",
    "parameter of int": "out = nn.Parameter(torch.ones(2, dtype=torch.long))",
    "train not bool": "out = nn.Linear(2, 3).train('no')",
    # ---- serialization ---------------------------------------------------------------------
    "save load state dict": "m = nn.Linear(2, 3)\ntorch.save(m.state_dict(), tmp + '/sd.pt')\n"
                            "sd = torch.load(tmp + '/sd.pt')\nout = [list(sd), (sd['weight'] - m.weight).abs().max()]",
    "save load module": "m = nn.Sequential(nn.Linear(2, 3), nn.ReLU())\ntorch.save(m, tmp + '/m.pt')\n"
                        "n = torch.load(tmp + '/m.pt', weights_only=False)\n"
                        "out = (n(torch.ones(1, 2)) - m(torch.ones(1, 2))).abs().max()",
    "load module weights_only": "m = nn.Sequential(nn.Linear(2, 3))\ntorch.save(m, tmp + '/m.pt')\n"
                                "out = torch.load(tmp + '/m.pt')",
    "load missing file": "out = torch.load(tmp + '/nope.pt')",
    "save to missing dir": "out = torch.save({'a': torch.ones(1)}, tmp + '/no/dir.pt')",
    "load not a checkpoint": "open(tmp + '/t.txt', 'w').write('hello')\nout = torch.load(tmp + '/t.txt')",
    "save load optimizer": "w = nn.Parameter(torch.ones(2))\no = torch.optim.Adam([w], lr=0.1)\n"
                           "(w * w).sum().backward()\no.step()\ntorch.save(o.state_dict(), tmp + '/o.pt')\n"
                           "sd = torch.load(tmp + '/o.pt')\nout = [sd['state'][0]['exp_avg'], sd['param_groups'][0]['lr']]",
    # ---- data ------------------------------------------------------------------------------
    "dataloader batch_size 0": "out = torch.utils.data.DataLoader(list(range(5)), batch_size=0)",
    "dataloader batch_size negative": "out = torch.utils.data.DataLoader(list(range(5)), batch_size=-1)",
    "dataloader drop_last": "out = [b for b in torch.utils.data.DataLoader(list(range(5)), batch_size=2, "
                            "drop_last=True)]",
    "dataloader len drop_last": "out = [len(torch.utils.data.DataLoader(list(range(5)), batch_size=2, "
                                "drop_last=d)) for d in (True, False)]",
    "dataloader mixed tuple": "ds = [(torch.ones(2) * i, i, float(i), 'x%d' % i) for i in range(3)]\n"
                              "b = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))\n"
                              "out = [b[0], b[1], str(b[1].dtype), b[2], str(b[2].dtype), b[3]]",
    "collate dicts": "ds = [{'x': torch.ones(2) * i, 'y': i} for i in range(3)]\n"
                     "b = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))\n"
                     "out = [sorted(b), b['x'], b['y']]",
    "collate numpy": "ds = [np.arange(3, dtype=np.float32) * i for i in range(3)]\n"
                     "b = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))\n"
                     "out = [type(b).__name__, b, str(b.dtype)]",
    "collate numpy scalars": "ds = [np.float64(i) for i in range(3)]\n"
                             "b = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))\n"
                             "out = [b, str(b.dtype)]",
    "collate ragged tensors": "ds = [torch.ones(i + 1) for i in range(3)]\n"
                              "out = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))",
    "collate bools": "b = next(iter(torch.utils.data.DataLoader([True, False], batch_size=2)))\n"
                     "out = [b, str(b.dtype)]",
    "collate none": "out = next(iter(torch.utils.data.DataLoader([None, None], batch_size=2)))",
    "collate batch_size None": "b = list(torch.utils.data.DataLoader([1, 2], batch_size=None))\n"
                               "out = [b, type(b[0]).__name__]",
    "tensordataset unequal": "out = torch.utils.data.TensorDataset(torch.ones(3), torch.ones(4))",
    "tensordataset index": "d = torch.utils.data.TensorDataset(torch.arange(3), torch.arange(3) * 2)\n"
                           "out = [len(d), d[1], d[-1]]",
    "random_split fractions": "g = torch.Generator().manual_seed(0)\n"
                              "a, b = torch.utils.data.random_split(range(10), [0.7, 0.3], generator=g)\n"
                              "out = [len(a), len(b), sorted(list(a) + list(b))]",
    "random_split fractions uneven": "a, b, c = torch.utils.data.random_split(range(10), [0.5, 0.3, 0.2])\n"
                                     "out = [len(a), len(b), len(c)]",
    "random_split fractions round": "r = torch.utils.data.random_split(range(5), [0.34, 0.33, 0.33])\n"
                                    "out = [len(x) for x in r]",
    "random_split wrong sum": "out = torch.utils.data.random_split(range(10), [3, 4])",
    "random_split bad fractions": "out = torch.utils.data.random_split(range(10), [0.5, 0.6])",
    "random_split negative fraction": "out = torch.utils.data.random_split(range(10), [1.2, -0.2])",
    "subset index": "s = torch.utils.data.Subset(list(range(10)), [3, 5])\nout = [len(s), s[1]]",
    "dataloader shuffle no len": "class D(torch.utils.data.IterableDataset):\n"
                                 "    def __iter__(self):\n        return iter(range(3))\n"
                                 "out = torch.utils.data.DataLoader(D(), shuffle=True)",
    "dataloader iterable": "class D(torch.utils.data.IterableDataset):\n"
                           "    def __iter__(self):\n        return iter(range(5))\n"
                           "out = [b for b in torch.utils.data.DataLoader(D(), batch_size=2)]",
    "dataloader sampler and shuffle": "out = torch.utils.data.DataLoader(list(range(4)), shuffle=True, "
                                      "sampler=torch.utils.data.SequentialSampler(range(4)))",
    "dataset index error": "out = torch.utils.data.TensorDataset(torch.ones(3))[5]",
    "concat dataset": "d = torch.utils.data.ConcatDataset([[1, 2], [3]])\nout = [len(d), d[2], d[-1]]",
}
