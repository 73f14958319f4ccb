"""Hostile study files: mutations of the built-in studies, shared by the property-based tests
(``tests/test_hostile_studies.py``, driven by hypothesis through ``st.randoms()``) and the larger
one-off campaign (``benchmarks/fuzz_studies.py``, driven by ``random.Random(seed)``).

A case is a study file (bytes, maybe with files it ``extends``) plus the ``--quick`` flag and
``--set`` overrides to load it with. :func:`outcome` loads one and says which class the result
falls in: "loaded", "error" (an AelabError of one line), "unclean" (an AelabError that is not
one line) or "crash" (any other exception). A run of the CLI is checked the same way, plus
"outside" when a file appeared anywhere but in the run folder.
"""

from __future__ import annotations

import copy
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from aelab.config import builtin_studies

BUILTINS = tuple(builtin_studies())  # every built-in study
DEEP = "__aelab_deep_nesting__"  # replaced in the TOML text by arrays nested very deep
HUGE = 10**15

NAMES = ["../x", "../../../../tmp/victim", "/abs/x", "/abs/dir/victim", "[/bold]", "[bold red]x[/]",
         "$\\alpha^$", "$x_{1}$", "", " ", ".", "..", ".hidden", "a/b", "a\\b", "C:\\x", "con",
         "a" * 81, "a" * 300, "a" * 5000, "x.npz", "/dev/zero", "/proc/self/mem", "~nouser/x", "名前", "naïve", "é", "a b", "tab\tname", "new\nline", "nul\x00x",
         "-", "-dash", "x" * 80, "ok-name", "ok.name_1", "\u202eevil", "🙂", "%s%n", "{0}", "<b>x</b>",
         "&amp;", "'; drop", "~", "~/x", "nan", "inf"]
NUMBERS = [0, 1, -1, 2, 3, -10**9, 10**9, 2**31, 2**63 - 1, -(2**63), 0.0, -0.0, 0.5, 1.5, -0.5,
           1e-320, 1e308, -1e308, float("nan"), float("inf"), float("-inf"), 1e6, 1000000, 10**7,
           True, False]


def hostile_values(rnd: random.Random) -> object:
    """One value a study file should never be trusted with."""
    kind = rnd.randrange(12)
    if kind <= 3:
        return rnd.choice(NUMBERS)
    if kind <= 5:
        return rnd.choice(NAMES)
    if kind == 6:
        return [rnd.choice(NUMBERS) for _ in range(rnd.randrange(0, 4))]
    if kind == 7:
        return [rnd.choice(NAMES) for _ in range(rnd.randrange(0, 3))]
    if kind == 8:
        return {rnd.choice(["x", "hidden", "epochs", "", "a.b", "[x]"]): rnd.choice(NUMBERS)}
    if kind == 9:
        import datetime

        return rnd.choice([datetime.date(2020, 1, 1), datetime.time(12, 0),
                           datetime.datetime(2020, 1, 1, 12, 0)])
    if kind == 10:
        return list(range(rnd.choice([0, 1, 200, 1001, 5000])))
    return rnd.choice([[[1, 2]], [[]], [{}], {}, [], [[1000000, 1000000]], DEEP])


# ---------------------------------------------------------------- paths in a table


def _walk(obj, path=()):
    yield path, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _walk(v, (*path, i))


def _parent(root, path):
    for p in path[:-1]:
        root = root[p]
    return root


def _pick(rnd, root, want=None):
    """A random path (not the root) whose value passes ``want``; None if there is none."""
    paths = [p for p, v in _walk(root) if p and (want is None or want(v))]
    return rnd.choice(paths) if paths else None


# ---------------------------------------------------------------- mutations of the table


def m_replace(rnd, d):
    path = _pick(rnd, d)
    if path:
        _parent(d, path)[path[-1]] = hostile_values(rnd)


def m_delete(rnd, d):
    path = _pick(rnd, d)
    if path:
        del _parent(d, path)[path[-1]]


def m_unknown_key(rnd, d):
    path = _pick(rnd, d, lambda v: isinstance(v, dict))
    target = d if path is None or rnd.random() < 0.3 else _parent(d, path)[path[-1]]
    target[rnd.choice(["x", "nope", "Epochs", "hidden ", "__class__", "a" * 300, "ü"])] = rnd.choice(NUMBERS)


def m_wrap(rnd, d):
    """A list where a scalar is expected, or a table in a list (a one-value sweep, or not)."""
    path = _pick(rnd, d, lambda v: not isinstance(v, list))
    if path:
        parent = _parent(d, path)
        parent[path[-1]] = [parent[path[-1]]] * rnd.choice([1, 2])


def m_unwrap(rnd, d):
    """A scalar where a list is expected."""
    path = _pick(rnd, d, lambda v: isinstance(v, list))
    if path:
        parent = _parent(d, path)
        v = parent[path[-1]]
        parent[path[-1]] = v[0] if v else 0


def m_name(rnd, d):
    """A hostile study, model, run or step-run name."""
    where = rnd.randrange(3)
    name = rnd.choice(NAMES)
    if where == 0 or not d.get("models"):
        d["name"] = name
    elif where == 1 and isinstance(d["models"], list) and d["models"]:
        m = rnd.choice(d["models"])
        if isinstance(m, dict):
            m["name"] = name
    elif isinstance(d.get("steps"), list):
        d["steps"].append({"kind": "reconstructions", "runs": [name]})


def m_number(rnd, d):
    """An out-of-range number for a numeric setting."""
    path = _pick(rnd, d, lambda v: isinstance(v, (int, float)) and not isinstance(v, bool))
    if path:
        _parent(d, path)[path[-1]] = rnd.choice(NUMBERS)


def m_sweep(rnd, d):
    """A sweep, often a huge one (up to 200×200×200 over three settings)."""
    size = rnd.choice([2, 3, 200, 1001, 10_000])
    train = d.setdefault("train", {})
    if not isinstance(train, dict):
        return
    key = rnd.choice(["batch_size", "epochs", "learning_rate", "seed", "input_noise"])
    values = [1 + i for i in range(size)] if key != "learning_rate" else [1e-3 * (1 + i) for i in range(size)]
    train[key] = values
    if rnd.random() < 0.5 and isinstance(d.get("models"), list) and d["models"]:
        m = rnd.choice(d["models"])
        if isinstance(m, dict) and isinstance(m.get("params", {}), dict):
            m.setdefault("params", {})
            m["params"][rnd.choice(["hidden", "k", "code_size", "filters"])] = (
                [[64]] * 2 if rnd.random() < 0.3 else list(range(1, size + 1)))
    if rnd.random() < 0.3:
        d["seed"] = list(range(size))


def m_step(rnd, d):
    """A step of a bad or good kind with random parameters and runs."""
    steps = d.setdefault("steps", [])
    if not isinstance(steps, list):
        return
    kinds = ["loss_curves", "reconstructions", "comparison", "code_activation", "denoising",
             "code_images", "latent_space", "run_table", "lr_verdicts", "linear_probe", "finetune",
             "clustering", "sparsity", "filters", "accuracy_vs_k", "novelty", "nope", "", "../x"]
    step = {"kind": rnd.choice(kinds) if rnd.random() < 0.9 else hostile_values(rnd)}
    for _ in range(rnd.randrange(3)):
        key = rnd.choice(["n", "runs", "Cs", "epochs", "head", "score", "dataset", "part", "log",
                          "n_init", "threshold", "min_drop", "max_iter", "batch_size", "learning_rate",
                          "baseline", "confusion", "x"])
        step[key] = hostile_values(rnd)
    if rnd.random() < 0.3:
        names = [m.get("name") for m in d.get("models", []) if isinstance(m, dict)]
        step["runs"] = [rnd.choice(names + ["nope"])] if names else ["nope"]
    if rnd.random() < 0.2:
        step = hostile_values(rnd)
    steps.insert(rnd.randrange(len(steps) + 1), step)


def m_quick(rnd, d):
    """A [quick] table of the wrong type or with bad contents."""
    choice = rnd.randrange(5)
    if choice == 0:
        d["quick"] = hostile_values(rnd)
    elif choice == 1:
        d["quick"] = {"train": {"epochs": rnd.choice(NUMBERS)}, "data": {"limit": rnd.choice(NUMBERS)}}
    elif choice == 2:
        d["quick"] = {"steps": hostile_values(rnd)}
    elif choice == 3:
        d["quick"] = {"steps": {rnd.choice(["finetune", "nope", "linear_probe"]): {"epochs": rnd.choice(NUMBERS)}}}
    else:
        d["quick"] = {"data": hostile_values(rnd), "models": hostile_values(rnd)}


def m_deep(rnd, d):
    path = _pick(rnd, d)
    if path:
        _parent(d, path)[path[-1]] = DEEP


def m_table_type(rnd, d):
    """A top-level table or array replaced by something else."""
    key = rnd.choice(["data", "train", "models", "steps", "name", "seed", "description", "extends"])
    d[key] = hostile_values(rnd)


def m_model(rnd, d):
    """A [[models]] entry with a bad or hostile model or parameters."""
    models = d.get("models")
    if not isinstance(models, list) or not models or not isinstance(models[0], dict):
        return
    m = rnd.choice([x for x in models if isinstance(x, dict)] or [models[0]])
    choice = rnd.randrange(6)
    if choice == 0:
        m["model"] = rnd.choice(["stacked", "conv", "denoising-conv", "vae", "k-sparse", "sparse-kl",
                                 "conv-transposed", "nope", "", "../x", "STACKED"])
    elif choice == 1:
        m["params"] = {rnd.choice(["hidden", "filters", "k", "rho", "beta", "alpha", "k_start",
                                   "latent_dim", "code_size", "loss", "output", "activation", "tied"]):
                       hostile_values(rnd)}
    elif choice == 2:
        m["params"] = {"hidden": rnd.choice([[1000000, 1000000], [1e6, 1e6], [100000, 100000], [],
                                             [0], [-5], [1] * 65, [2**40]])}
    elif choice == 3:
        m["train"] = {rnd.choice(["epochs", "batch_size", "eval_batch_size", "learning_rate", "device",
                                  "optimizer", "precision", "early_stopping", "input_noise", "seed"]):
                      hostile_values(rnd)}
    elif choice == 4:
        m["train"] = {"early_stopping": {rnd.choice(["monitor", "patience", "min_delta", "restore_best",
                                                     "x"]): hostile_values(rnd)}}
    else:
        models.append(copy.deepcopy(m))  # a duplicate name


def m_benign(rnd, d):
    """A change a careful user might make: most such studies still load, and must then train."""
    models = [m for m in d.get("models", []) if isinstance(m, dict)] if isinstance(d.get("models"), list) else []
    choice = rnd.randrange(8)
    train = d.get("train") if isinstance(d.get("train"), dict) else None
    if choice == 0 and train is not None:
        train["epochs"] = rnd.choice([1, 2, [1, 2]])
    elif choice == 1 and train is not None:
        train["batch_size"] = rnd.choice([1, 7, 64, 5000, [16, 32]])
    elif choice == 2 and train is not None:
        train["early_stopping"] = {"monitor": rnd.choice(["val_loss", "train_loss", "val_recon",
                                                          "val_penalty", "val_kl", "loss"]),
                                   "patience": rnd.choice([0, 1, 3])}
    elif choice == 3 and models:
        m = rnd.choice(models)
        m["model"] = rnd.choice(["stacked", "simple", "deep", "conv", "denoising-conv", "vae",
                                 "k-sparse", "sparse-kl", "sparse-l1", "conv-transposed", "stacked-sparse"])
        m["params"] = {}
    elif choice == 4 and isinstance(d.get("data"), dict):
        d["data"]["split"] = rnd.choice([[5, 1], [1, 1, 1], "official", [5, 1, 1]])
        if rnd.random() < 0.5:
            d["data"]["dataset"] = rnd.choice(["mnist-5k", "digits", "mnist", "fashion-mnist", "~nouser/x",
                                               "a" * 300, "/", "/etc/passwd", ".", "x.npz"])
            d["data"].pop("classes", None)
    elif choice == 5 and isinstance(d.get("steps"), list):
        kinds = ["reconstructions", "code_images", "latent_space", "denoising", "filters", "sparsity",
                 "linear_probe", "clustering", "novelty", "code_activation", "comparison", "run_table"]
        step = {"kind": rnd.choice(kinds)}
        if models and rnd.random() < 0.5:
            step["runs"] = [rnd.choice(models).get("name")]
        d["steps"].append(step)
    elif choice == 6 and models:
        m = rnd.choice(models)
        if isinstance(m.get("train", {}), dict):
            m.setdefault("train", {})[rnd.choice(["epochs", "batch_size", "seed"])] = rnd.choice([1, 2, [1, 2]])
    elif choice == 7:
        d["seed"] = rnd.choice([0, 1, [0, 1], 2**32 - 1, 2**32])


MUTATIONS = [m_replace, m_delete, m_unknown_key, m_wrap, m_unwrap, m_name, m_number, m_sweep, m_step,
             m_quick, m_deep, m_table_type, m_model] + [m_benign] * 6


# ---------------------------------------------------------------- overrides


def random_overrides(rnd: random.Random, d: dict) -> list[str]:
    """``--set`` arguments, sane and not."""
    names = [m.get("name") for m in d.get("models", []) if isinstance(m, dict)] if isinstance(
        d.get("models"), list) else []
    pool = ["train.epochs=1", "train.epochs=0", "train.epochs=abc", "train.epochs=[1, 2]",
            "models.stacked=5", "models.nope.params.hidden=[1]", "steps.reconstructions.n=0",
            "steps=5", "quick=5", "data.split=[nan, 1, 1]", "=", "noequals", ".=1", "a..b=1",
            "train.x.y=1", "name=../../x", "seed=-1", "seed=[1, 2]", "data=5", "data.dataset=",
            "models=[]", "train.learning_rate=1e308", f"models.{rnd.choice(names or ['x'])}.params.hidden=[[1e6]]",
            "data.limit=5", "train.device='cuda'", "steps.loss_curves=1", "models.x", "train=1",
            "train.epochs=[[[[[[1]]]]]]", "train.epochs=" + "[" * 5000 + "]" * 5000]
    return [rnd.choice(pool) for _ in range(rnd.randrange(0, 3))]


# ---------------------------------------------------------------- files


def _toml(d: dict) -> str:
    text = tomli_w.dumps(d)
    return text.replace(f'"{DEEP}"', "[" * 100_000 + "]" * 100_000)


@dataclass
class Case:
    files: dict[str, bytes]  # file name -> content, written into one folder; "study.toml" is loaded
    quick: bool = False
    overrides: list[str] = field(default_factory=list)
    what: list[str] = field(default_factory=list)  # the mutations, for reports

    def write(self, folder: Path) -> Path:
        for name, data in self.files.items():
            (folder / name).write_bytes(data)
        return folder / "study.toml"


def _raw_file(rnd: random.Random, d: dict, what: list[str]) -> dict[str, bytes]:
    """File-level hostility: encodings, size, truncation, extends chains and cycles."""
    text = _toml(d)
    choice = rnd.randrange(9)
    what.append(f"file{choice}")
    if choice == 0:
        return {"study.toml": text.replace("a", "\u00e9").encode("latin-1", "replace")}
    if choice == 1:
        return {"study.toml": text.encode("utf-16")}
    if choice == 2:
        data = text.encode()
        return {"study.toml": data[: rnd.randrange(len(data) + 1)]}
    if choice == 3:
        return {"study.toml": bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300)))}
    if choice == 4:
        return {"study.toml": (text + "#" + "x" * (1 << 20)).encode()}
    if choice == 5:  # a long extends chain, ending at the mutated study
        n = rnd.choice([2, 16, 17, 40, 1500])
        files = {f"s{i}.toml": f'extends = "s{i + 1}.toml"\n'.encode() for i in range(n)}
        files[f"s{n}.toml"] = text.encode()
        files["study.toml"] = b'extends = "s0.toml"\n'
        return files
    if choice == 6:  # a cycle
        return {"study.toml": b'extends = "b.toml"\nname = "a"\n', "b.toml": b'extends = "study.toml"\n'}
    if choice == 7:
        target = rnd.choice(["nope.toml", "/", "/etc/passwd", "..", "", "quickstart", "[/bold]",
                             "/dev/zero", "/proc/self/mem"])
        return {"study.toml": tomli_w.dumps({"extends": target, **{k: v for k, v in d.items()
                                                                    if k == "name"}}).encode()}
    return {"study.toml": b"\xef\xbb\xbf" + text.encode()}  # a BOM is fine


def make_case(rnd: random.Random, base: dict | None = None, benign: bool = False) -> Case:
    """One hostile case: a built-in study's table with 1-3 mutations (sometimes a file-level
    one), loaded with or without --quick and with a few --set overrides. ``benign``: only the
    changes a careful user makes (most load, and must then train), no file-level mutation."""
    from aelab.config import read_study_file

    what = [rnd.choice(BUILTINS)] if base is None else ["given"]
    d = copy.deepcopy(base if base is not None else read_study_file(what[0])[0])
    for _ in range(rnd.randrange(1, 4)):
        m = m_benign if benign else rnd.choice(MUTATIONS)
        what.append(m.__name__)
        m(rnd, d)
    if benign:
        return Case({"study.toml": _toml(d).encode()}, quick=rnd.random() < 0.4, what=what)
    if rnd.random() < 0.1:
        files = _raw_file(rnd, d, what)
    else:
        files = {"study.toml": _toml(d).encode()}
    overrides = random_overrides(rnd, d) if rnd.random() < 0.3 else []
    return Case(files, quick=rnd.random() < 0.4, overrides=overrides, what=what)


# ---------------------------------------------------------------- outcomes


def classify(err: BaseException | None) -> str:
    from aelab.errors import AelabError

    if err is None:
        return "loaded"
    if isinstance(err, AelabError):
        text = str(err)
        return "error" if text.strip() and "\n" not in text and len(text) <= 1000 else "unclean"
    return "crash"


def outcome(case: Case, folder: Path, limits=None) -> tuple[str, BaseException | None]:
    """Load a case with ``load_study`` (in ``folder``); nothing may appear but its own files."""
    from aelab.config import load_study

    path = case.write(folder)
    before = set(_tree(folder))
    err = None
    try:
        load_study(str(path), quick=case.quick, overrides=case.overrides, limits=limits)
    except Exception as e:  # noqa: BLE001 - the point is to see every kind
        err = e
    after = set(_tree(folder))
    if after - before:
        return "outside", err
    return classify(err), err


def _tree(folder: Path) -> list[str]:
    out = []
    for root, dirs, files in os.walk(folder):
        out += [os.path.join(root, n) for n in dirs + files]
    return out

