"""The programs tests/examples/acceptance.py runs, and what each needs besides its own
files: arguments, a small synthetic data set, or a driver of ours for a library."""
from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Program:
    name: str
    source: str                 # a mirror directory (owner+name) or "tutorials"
    files: list                 # paths in the repository, copied unchanged
    command: list               # after `python -m gradjit torch`
    prefix: str = ""            # dropped from the paths in the scratch directory
    cwd: str = "."
    pythonpath: list = field(default_factory=list)     # repository-relative, for shims
    env: dict = field(default_factory=dict)
    extra_files: dict = field(default_factory=dict)    # name -> text (data, drivers)
    expect: str = ""            # a line the output must contain
    result: str = ""            # regex: the numbers compared with PyTorch's run (all matches)

    def strip(self, path: str) -> str:
        return path[len(self.prefix):] if path.startswith(self.prefix) else path


def _corpus(lines: int, seed: int) -> str:
    """Sentences over a 16-word vocabulary (word_language_model reads train/valid/test)."""
    words = "the cat dog sat on mat a big small red blue ran fast slow and then".split()
    rng = random.Random(seed)
    return "".join(" ".join(rng.choice(words) for _ in range(rng.randint(4, 12))) + "\n"
                   for _ in range(lines))


WLM_DATA = {"data/train.txt": _corpus(300, 0), "data/valid.txt": _corpus(40, 1),
            "data/test.txt": _corpus(40, 2)}
WLM_FILES = [f"word_language_model/{f}.py" for f in ("main", "model", "data")]
WLM_ARGS = ["main.py", "--data", "data", "--epochs", "1", "--emsize", "16", "--nhid", "16",
            "--bptt", "8", "--batch_size", "4", "--save", "model.pt", "--dry-run"]

MICROGRAD_DRIVER = '''import importlib
import sys
sys.path.insert(0, "test")
module = importlib.import_module("test_engine")
for name in sorted(n for n in dir(module) if n.startswith("test_")):
    getattr(module, name)()
    print("passed", name)
'''

MINGPT_DRIVER = '''import torch
from torch.utils.data import Dataset
from mingpt.model import GPT
from mingpt.trainer import Trainer
from mingpt.utils import set_seed


class Counting(Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, i):
        seq = torch.tensor([(i + k) % 6 for k in range(9)], dtype=torch.long)
        return seq[:-1], seq[1:]


set_seed(0)
config = GPT.get_default_config()
config.model_type, config.vocab_size, config.block_size = "gpt-nano", 6, 8
model = GPT(config)
train = Trainer.get_default_config()
train.max_iters, train.batch_size, train.num_workers = 6, 8, 0
trainer = Trainer(train, model, Counting())
losses = []
trainer.add_callback("on_batch_end", lambda t: losses.append(round(t.loss.item(), 4)))
trainer.run()
print("losses", losses)
print("generated", model.generate(torch.tensor([[0, 1, 2]]), 4, do_sample=False).tolist())
'''

NANOGPT_DRIVER = '''import torch
from model import GPT, GPTConfig

torch.manual_seed(0)
text = "first citizen: before we proceed any further, hear me speak. " * 8
chars = sorted(set(text))
data = torch.tensor([chars.index(c) for c in text], dtype=torch.long)
config = GPTConfig(block_size=16, vocab_size=len(chars), n_layer=2, n_head=2, n_embd=32,
                   dropout=0.0, bias=True)
model = GPT(config)
optimizer = model.configure_optimizers(weight_decay=0.1, learning_rate=3e-3,
                                       betas=(0.9, 0.95), device_type="cpu")
for step in range(20):
    ix = [(7 * step + 13 * b) % (len(data) - 17) for b in range(8)]
    x = torch.stack([data[i:i + 16] for i in ix])
    y = torch.stack([data[i + 1:i + 17] for i in ix])
    logits, loss = model(x, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
print("final loss", round(loss.item(), 4))
out = model.generate(data[:8].view(1, -1), 8, temperature=1.0, top_k=5)
print("generated", "".join(chars[i] for i in out[0].tolist()))
'''

SINE_DRIVER = '''import runpy
import sys
runpy.run_path("generate_sine_wave.py", run_name="__main__")
sys.argv = ["train.py", "--steps", "1"]
runpy.run_path("train.py", run_name="__main__")
'''

TUTORIALS = ["beginner_source/nlp/sequence_models_tutorial.py",
             "beginner_source/nlp/word_embeddings_tutorial.py",
             "beginner_source/nlp/deep_learning_tutorial.py",
             "beginner_source/nlp/pytorch_tutorial.py",
             "beginner_source/examples_tensor/polynomial_tensor.py",
             "beginner_source/examples_autograd/polynomial_autograd.py",
             "beginner_source/examples_autograd/polynomial_custom_function.py",
             "beginner_source/examples_nn/polynomial_nn.py",
             "beginner_source/examples_nn/polynomial_optim.py",
             "beginner_source/examples_nn/polynomial_module.py",
             "beginner_source/examples_nn/dynamic_net.py",
             "beginner_source/blitz/tensor_tutorial.py",
             "beginner_source/blitz/autograd_tutorial.py",
             "beginner_source/blitz/neural_networks_tutorial.py"]

PROGRAMS = [
    Program("examples/mnist", "pytorch+examples", ["mnist/main.py"],
            ["main.py", "--epochs", "1", "--batch-size", "32", "--test-batch-size", "64",
             "--log-interval", "2"], prefix="mnist/",
            pythonpath=["tests/examples/shims"], env={"GRADJIT_FAKE_MNIST": "256,64"},
            expect="Test set", result=r"Average loss: ([-\d.e]+)"),
    Program("examples/word_language_model LSTM", "pytorch+examples", WLM_FILES, WLM_ARGS,
            prefix="word_language_model/", extra_files=WLM_DATA, expect="End of training",
            result=r"test loss +([\d.]+)"),
    Program("examples/word_language_model Transformer", "pytorch+examples", WLM_FILES,
            WLM_ARGS + ["--model", "Transformer", "--nhead", "2"],
            prefix="word_language_model/", extra_files=WLM_DATA, expect="End of training",
            result=r"test loss +([\d.]+)"),
    Program("examples/time_sequence_prediction", "pytorch+examples",
            ["time_sequence_prediction/generate_sine_wave.py",
             "time_sequence_prediction/train.py"], ["run_both.py"],
            prefix="time_sequence_prediction/", extra_files={"run_both.py": SINE_DRIVER},
            pythonpath=["tests/examples/shims"], expect="loss:", result=r"loss: ([\d.e-]+)"),
    Program("examples/regression", "pytorch+examples", ["regression/main.py"], ["main.py"],
            prefix="regression/", expect="Actual function", result=r"Loss: ([-\d.e]+)"),
    Program("micrograd tests", "karpathy+micrograd",
            ["micrograd/__init__.py", "micrograd/engine.py", "micrograd/nn.py",
             "test/test_engine.py"], ["run_tests.py"],
            extra_files={"run_tests.py": MICROGRAD_DRIVER}, expect="passed test_sanity_check"),
    Program("minGPT model + trainer", "karpathy+minGPT",
            [f"mingpt/{f}.py" for f in ("__init__", "model", "trainer", "utils", "bpe")],
            ["run_gpt.py"], extra_files={"run_gpt.py": MINGPT_DRIVER}, expect="generated",
            result=r"losses \[([^\]]*)\]"),
    Program("nanoGPT model + 20 AdamW steps", "karpathy+nanoGPT", ["model.py"],
            ["run_nanogpt.py"], extra_files={"run_nanogpt.py": NANOGPT_DRIVER},
            expect="generated", result=r"final loss ([\d.]+)"),
] + [Program("tutorials/" + path.split("/")[-1][:-3], "tutorials", [path],
             [path.split("/")[-1]], prefix=path.rsplit("/", 1)[0] + "/",
             result=r"(?m)^Result: (.*)$")
     for path in TUTORIALS]


def _names(per_language: int, seed: int) -> dict:
    """data/names/<Language>.txt of the char-rnn tutorials: made-up names from a few
    syllables per language (learnable, unlike uniform random strings)."""
    syllables = {"Italian": "ri ni ca lo ta ve bel", "German": "sch mid ber hau man ger",
                 "Japanese": "ta ka mo shi ki no ri", "Polish": "ski wicz rz ow sz ka"}
    rng = random.Random(seed)
    files = {}
    for language, parts in syllables.items():
        parts = parts.split()
        names = ["".join(rng.choice(parts) for _ in range(rng.randint(2, 4))).capitalize()
                 for _ in range(per_language)]
        files[f"data/names/{language}.txt"] = "\n".join(names) + "\n"
    return files


SHIMS = ["tests/examples/shims"]
MORE = [
    Program("examples/vae", "pytorch+examples", ["vae/main.py"],
            ["main.py", "--epochs", "1", "--batch-size", "32", "--log-interval", "4"],
            prefix="vae/", pythonpath=SHIMS, env={"GRADJIT_FAKE_MNIST": "256,64"},
            extra_files={"results/.keep": ""}, expect="Test set loss",
            result=r"Test set loss: ([\d.]+)"),
    Program("examples/mnist_rnn", "pytorch+examples", ["mnist_rnn/main.py"],
            ["main.py", "--epochs", "1", "--batch-size", "32", "--test-batch-size", "64",
             "--log-interval", "2"], prefix="mnist_rnn/", pythonpath=SHIMS,
            env={"GRADJIT_FAKE_MNIST": "256,64"}, expect="Test set",
            result=r"Average loss: ([-\d.e]+)"),
    Program("examples/mnist_forward_forward", "pytorch+examples",
            ["mnist_forward_forward/main.py"],
            ["main.py", "--epochs", "20", "--train_size", "256", "--test_size", "64",
             "--log-interval", "5"], prefix="mnist_forward_forward/", pythonpath=SHIMS,
            env={"GRADJIT_FAKE_MNIST": "256,64"}, expect="test error",
            result=r"test error: ([\d.]+)"),
    Program("examples/gat", "pytorch+examples", ["gat/main.py"],
            ["main.py", "--epochs", "10", "--val-every", "5", "--hidden-dim", "8",
             "--num-heads", "2"], prefix="gat/", pythonpath=SHIMS,
            expect="Test set results", result=r"Test set results: (.*)$"),
    Program("examples/gcn", "pytorch+examples", ["gcn/main.py"],
            ["main.py", "--epochs", "20", "--val-every", "5"], prefix="gcn/",
            pythonpath=SHIMS, expect="Test set results", result=r"Test set results: (.*)$"),
    Program("examples/dcgan", "pytorch+examples", ["dcgan/main.py"],
            ["main.py", "--dataset", "fake", "--imageSize", "64", "--batchSize", "4",
             "--nz", "8", "--ngf", "4", "--ndf", "4", "--workers", "0", "--dry-run",
             "--manualSeed", "1"], prefix="dcgan/", pythonpath=SHIMS, expect="Loss_D",
            result=r"Loss_D: (.*)$"),
]
BASICS = ["quickstart_tutorial", "tensorqs_tutorial", "autogradqs_tutorial",
          "buildmodel_tutorial", "optimization_tutorial"]
MORE += [Program("tutorials/" + name, "tutorials", [f"beginner_source/basics/{name}.py"],
                 [f"{name}.py"], prefix="beginner_source/basics/", pythonpath=SHIMS,
                 env={"GRADJIT_FAKE_MNIST": "640,256"}, result=r"Avg loss: ([\d.]+)")
         for name in BASICS]
MORE.append(Program("tutorials/nn_tutorial", "tutorials", ["beginner_source/nn_tutorial.py"],
                    ["nn_tutorial.py"], prefix="beginner_source/", pythonpath=SHIMS,
                    env={"GRADJIT_FAKE_MNIST": "1024,256"}, result=r"(?m)^1 ([\d.]+)$"))
MORE.append(Program("tutorials/char_rnn_classification", "tutorials",
                    ["intermediate_source/char_rnn_classification_tutorial.py"],
                    ["char_rnn_classification_tutorial.py"], prefix="intermediate_source/",
                    pythonpath=SHIMS, extra_files=_names(60, 0), expect="> Satoshi",
                    result=r"(?m)^100000 100% \(.*\) ([\d.]+) "))
PROGRAMS += MORE


NANOGPT_TRAIN_ARGS = ["config/train_shakespeare_char.py", "--device=cpu", "--compile=False",
                      "--eval_iters=2", "--eval_interval=5", "--warmup_iters=2",
                      "--log_interval=1", "--block_size=32", "--batch_size=4", "--n_layer=2",
                      "--n_head=2", "--n_embd=32", "--max_iters=10", "--lr_decay_iters=10",
                      "--dropout=0.0"]
NANOGPT_SCRIPTS_DRIVER = f'''import runpy
import sys

def script(path, *args):
    sys.argv = [path, *args]
    runpy.run_path(path, run_name="__main__")

script("data/shakespeare_char/prepare.py")
train = {NANOGPT_TRAIN_ARGS!r}
script("train.py", *train)
script("train.py", *train[:-3], "--max_iters=12", "--lr_decay_iters=10", "--dropout=0.0",
       "--init_from=resume")
script("sample.py", "--out_dir=out-shakespeare-char", "--device=cpu", "--num_samples=1",
       "--max_new_tokens=20", "--compile=False")
'''
PROGRAMS.append(Program(
    "nanoGPT prepare + train.py + resume + sample.py", "karpathy+nanoGPT",
    ["data/shakespeare_char/prepare.py", "train.py", "sample.py", "model.py", "configurator.py",
     "config/train_shakespeare_char.py"], ["run_scripts.py"], pythonpath=SHIMS,
    extra_files={"run_scripts.py": NANOGPT_SCRIPTS_DRIVER}, expect="---------------",
    result=r"step 10: (train loss [\d.]+, val loss [\d.]+)"))



def _project_driver(path: str) -> str:
    """minGPT's projects import `mingpt` from the repository root (setup.py installs it):
    run the project file from there, its arguments passed through."""
    return (f"import runpy\nimport sys\nsys.argv = [{path!r}, *sys.argv[1:]]\n"
            f"runpy.run_path({path!r}, run_name=\"__main__\")\n")


MINGPT_LIB = [f"mingpt/{f}.py" for f in ("__init__", "model", "trainer", "utils", "bpe")]
PROGRAMS += [
    Program("minGPT projects/adder", "karpathy+minGPT",
            MINGPT_LIB + ["projects/adder/adder.py"],
            ["run_adder.py", "--data.ndigit=1", "--trainer.max_iters=501",
             "--trainer.batch_size=16"],
            extra_files={"run_adder.py": _project_driver("projects/adder/adder.py")},
            expect="test final score", result=r"train final score: \d+/\d+ = ([\d.]+)%"),
    Program("minGPT projects/chargpt", "karpathy+minGPT",
            MINGPT_LIB + ["projects/chargpt/chargpt.py"],
            ["run_chargpt.py", "--trainer.max_iters=20", "--data.block_size=32",
             "--model.model_type=gpt-nano", "--trainer.batch_size=8"],
            extra_files={"run_chargpt.py": _project_driver("projects/chargpt/chargpt.py"),
                         "input.txt": "O God, O God!\n" + _corpus(400, 3)},
            expect="saving model", result=r"iter 10: train loss ([\d.]+)"),
]
