"""Model summaries that show a model as an assignment describes it, and the training setup in a line.

torchinfo only sees modules, so a Keras reader would miss what lives in ``forward`` and ``loss``:
the sigmoid output (applied in ``Autoencoder.activate``, so BCE can take logits), the L1 activity
penalty (Keras ``activity_regularizer``), KL sparsity, the k-sparse top-k and the VAE's KL term.
:func:`model_summary` runs torchinfo for the output shapes and mult-adds, lists every leaf layer
(also those ``forward`` does not call, such as the VAE's log-variance head), and adds those parts
as rows and notes. :func:`training_line` says how the model is trained, in one sentence.
"""

from __future__ import annotations

import math

from torch import nn

# models.loss (a name in losses.RECONSTRUCTION) -> what a report calls it
LOSS_NAMES = {"bce": "binary cross-entropy", "mse": "mean squared error", "sse": "sum of squared errors"}
# aelab.optim.OPTIMIZERS name -> the Keras class name a student knows
OPTIMIZER_NAMES = {"nadam": "Nadam", "adam": "Adam", "rmsprop": "RMSprop", "sgd": "SGD",
                   "adadelta": "Adadelta", "adadelta-original": "Adadelta (original Keras default)"}

WIDTH = 88  # characters: fits an 88-column terminal and the report's <pre> without wrapping


def loss_label(name: str | None) -> str:
    """'bce' -> 'binary cross-entropy'; an unknown name is returned as given."""
    return LOSS_NAMES.get(name or "", name or "loss")


def number(x: float) -> str:
    """A number as a reader writes it: 1e-06, 0.0001 -> 1e-04, 0.05, 1, never '-0' or '-0.0000'."""
    x = float(x)
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else str(x)
    if abs(x) < 1e-3:
        mantissa, exp = f"{x:.4e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{exp}"
    return f"{x:.6g}"


def _count(n: int) -> str:
    return f"{n:,}" if n else "0"


def _shape(size) -> str:
    """torchinfo's [1, 256] -> Keras's (None, 256): the batch dimension is free."""
    if not size:
        return "--"
    if isinstance(size[0], (list, tuple)):  # several outputs: show the first
        size = size[0]
    return "(" + ", ".join(["None", *map(str, size[1:])]) + ")"


def _si(n: float, unit: str = "") -> str:
    """428354 -> '428.4 k'; with unit 'B' -> '428.4 kB'."""
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {prefix}{unit}"
    return f"{int(n)} {unit}".rstrip()


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules without children, in definition order, named by their path (encoder.3)."""
    return [(name, m) for name, m in model.named_modules() if name and not any(m.children())]


def _code_layer(model: nn.Module) -> str:
    """The name of the layer whose output is the code (the encoder's last leaf)."""
    names = [n for n, _ in _leaves(model) if n.startswith("encoder.") or n == "encoder"]
    return names[-1] if names else "encoder"


def _code_where(model: nn.Module) -> str:
    """Where the codes come from, for a reader: "output of encoder.4, 50 units"."""
    where = f"output of {_code_layer(model)}"
    shape = getattr(model, "code_shape", None)
    if shape:
        where += f", {math.prod(shape):,} units"
    return where


def _notes(model: nn.Module) -> dict[str, list[str]]:
    """Rows to add under a layer (its name -> lines) for what torchinfo cannot see."""
    from .dense import KLSparseAutoencoder, KSparseAutoencoder, TiedLinear
    from .vae import VAE

    key, code = _code_layer(model), _code_where(model)
    notes: dict[str, list[str]] = {}
    if getattr(model, "activity_l1", 0.0) > 0:
        notes.setdefault(key, []).append(
            f"L1 activity penalty {number(model.activity_l1)} on the codes ({code})")
    if isinstance(model, KLSparseAutoencoder):
        notes.setdefault(key, []).append(
            f"KL sparsity penalty rho {number(model.rho)}, beta {number(model.beta)} on the "
            f"codes ({code})")
    if isinstance(model, KSparseAutoencoder):
        start = f", k_start {model.k_start}" if model.k_start is not None else ""
        notes.setdefault(key, []).append(
            f"k-sparse: keep the k = {model.k} largest codes per sample ({code}), "
            f"alpha·k = {model.k_eval} when encoding{start}")
    for name, m in _leaves(model):
        if isinstance(m, TiedLinear):
            src = next((n for n, s in model.named_modules() if s is m.source), "the encoder")
            notes.setdefault(name, []).append(f"weight: transpose of {src}.weight (tied weights)")
    if isinstance(model, VAE):
        head = next((n for n, s in model.named_modules() if s is model.encoder[-1]), "encoder")
        notes.setdefault(key, []).append(
            f"sampling: z = mean + exp(log_var / 2)·eps, eps ~ N(0, I) ({head}.mean, {head}.log_var)")
    return notes


def _regularisers(model: nn.Module) -> list[str]:
    """The loss terms besides reconstruction, with their weights, as Keras users write them."""
    from .dense import KLSparseAutoencoder, KSparseAutoencoder
    from .vae import VAE

    code = _code_where(model)
    lines = []
    if getattr(model, "activity_l1", 0.0) > 0:
        lines.append(f"Regulariser: L1 activity penalty {number(model.activity_l1)} on the codes "
                     f"({code}): {number(model.activity_l1)} × sum|codes| per sample, averaged "
                     "over the batch, added to the loss (Keras activity_regularizer=l1).")
    if isinstance(model, KLSparseAutoencoder):
        lines.append(f"Regulariser: KL sparsity on the codes ({code}): beta {number(model.beta)} "
                     f"× sum over units of KL(rho {number(model.rho)} || mean activation of the unit).")
    if isinstance(model, KSparseAutoencoder):
        tied = any(type(m).__name__ == "TiedLinear" for m in model.modules())
        start = (f"; k falls from k_start {model.k_start} to k over the first half of training"
                 if model.k_start is not None else "")
        lines.append(f"Constraint: k-sparse codes ({code}): k {model.k}, alpha·k "
                     f"{model.k_eval} (alpha {number(model.alpha)}) at encoding time{start}; "
                     f"tied weights: {'yes' if tied else 'no'}.")
    if isinstance(model, VAE):
        lines.append("Regulariser: KL(q(z|x) || N(0, I)) added to the reconstruction loss summed "
                     "over pixels (the Keras blog's 784·BCE + KL).")
    return lines


def _torchinfo(model: nn.Module, shape: tuple) -> tuple[dict, int]:
    """torchinfo's layer infos by module id, and the mult-adds per image (nothing for no shape)."""
    if not shape:
        return {}, 0
    import torchinfo

    device = next(model.parameters()).device
    stats = torchinfo.summary(model, input_size=(1, *shape), verbose=0, device=device,
                              depth=10, mode="eval")
    return {id(i.module): i for i in stats.summary_list}, stats.total_mult_adds


def _layer_rows(model: nn.Module, infos: dict, shape: tuple) -> list[tuple[str, str, str]]:
    """(layer, output shape, params) per leaf layer, a note row ('', '') under the layer it is
    about, and the output activation that ``forward`` applies outside the modules."""
    notes = _notes(model)
    rows: list[tuple[str, str, str]] = []
    for lname, m in _leaves(model):
        info = infos.get(id(m))
        n_params = sum(p.numel() for p in m.parameters(recurse=False))
        if info is not None and info.executed:
            out = _shape(info.output_size)
        elif isinstance(m, nn.Linear):  # not called by forward (the VAE's log-variance head)
            out = f"(None, {m.out_features})"
        else:
            out = "--"
        rows.append((f"{lname} ({type(m).__name__})", out, _count(n_params)))
        rows += [("  + " + note, "", "") for note in notes.get(lname, [])]
    output = getattr(model, "output", None)
    if output is not None:
        act = "Sigmoid" if output == "sigmoid" else "linear (none)"
        rows.append((f"output activation: {act}", "(None, " + ", ".join(map(str, shape)) + ")", "0"))
    return rows


def model_summary(model: nn.Module, name: str | None = None) -> str:
    """A Keras-like table: every layer with its output shape and parameters, the output activation,
    regularisers and constraints on the layer they act on, parameter counts and the loss."""
    name = name or (getattr(model, "spec", None) or {}).get("model") or type(model).__name__
    shape = tuple(getattr(model, "input_shape", ()))
    infos, macs = _torchinfo(model, shape)
    rows = _layer_rows(model, infos, shape)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    c1 = min(max(30, *(len(r[0]) for r in rows if r[1])), WIDTH - 34)
    lines = [f'Model: "{name}" ({type(model).__name__}), input {_shape([1, *shape])}',
             "=" * WIDTH, f"{'Layer (type)':<{c1}}  {'Output shape':<20}  {'Param #':>10}", "=" * WIDTH]
    for text, out, params in rows:
        if not out:  # a note: its own line, wrapped under the layer it belongs to
            lines += _wrap(text, WIDTH, indent="    ")
        else:
            lines.append(f"{text:<{c1}}  {out:<20}  {params:>10}".rstrip())
    lines += ["=" * WIDTH,
              f"Total params: {_count(total)}",
              f"Trainable params: {_count(trainable)}",
              f"Non-trainable params: {_count(total - trainable)}"]
    if macs:
        lines.append(f"Mult-adds per image: {_si(macs)}")
    lines.append(f"Parameter memory: {_si(total * 4, 'B')} (float32)")
    loss = getattr(model, "loss_name", None)
    if loss:
        how = (" from the logits of the sigmoid output (numerically stable)"
               if loss == "bce" and getattr(model, "output", None) == "sigmoid" else "")
        lines.append(f"Loss: {loss_label(loss)}{how}.")
    for line in _regularisers(model):
        lines += _wrap(line, WIDTH, indent="  ")
    lines.append("=" * WIDTH)
    return "\n".join(lines)


def _wrap(text: str, width: int, indent: str) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width, subsequent_indent=indent, break_on_hyphens=False) or [""]


def _training_parts(cfg, loss: object) -> list[tuple[str, str, str]]:
    """One run's training setup as (prefix, value, suffix) clauses, so that the clauses of several
    runs can be merged on the value ("batch 32 or 256")."""
    from ..optim import OPTIMIZERS

    opt = getattr(cfg, "optimizer", "nadam")
    parts = [("", OPTIMIZER_NAMES.get(opt, opt), "")]
    lr = getattr(cfg, "learning_rate", None)
    if lr is None:
        parts.append(("learning rate ", number(OPTIMIZERS[opt][2]), " (the optimizer's default)"))
    else:
        parts.append(("learning rate ", number(lr), ""))
    loss_name = getattr(loss, "loss_name", loss)
    if isinstance(loss_name, str):
        parts.append(("loss ", loss_label(loss_name), ""))
    parts.append(("batch ", str(getattr(cfg, "batch_size", "?")), ""))
    es = getattr(cfg, "early_stopping", None)
    parts.append(("up to " if es is not None else "", str(getattr(cfg, "epochs", "?")), " epochs"))
    if es is not None:
        restore = ", restore best weights" if getattr(es, "restore_best", False) else ""
        parts.append(("", f"early stopping on {es.monitor} (patience {es.patience}, "
                          f"min_delta {number(es.min_delta)}{restore})", ""))
    else:
        parts.append(("", "no early stopping", ""))
    noise = getattr(cfg, "input_noise", 0.0) or 0.0
    parts.append(("inputs + ", number(noise), "·N(0, 1) noise, clipped to [0, 1]") if noise > 0
                 else ("", "no input noise", ""))
    return parts


def _merge(clauses: list[tuple[str, str, str]]) -> str:
    """The same clause of several runs: 'batch 32 or 256' where only the value differs, else the
    whole clauses joined with 'or'; one clause when all runs agree."""
    distinct = list(dict.fromkeys(clauses))
    if len(distinct) == 1:
        return "".join(distinct[0])
    if len({(p, s) for p, _, s in distinct}) == 1:
        p, _, s = distinct[0]
        values = [v for _, v, _ in distinct]
        return f"{p}{', '.join(values[:-1])} or {values[-1]}{s} (by run)"
    return " or ".join("".join(c) for c in distinct) + " (by run)"


def training_line(cfg, loss: object = None) -> str:
    """How a model's runs are trained, in one line: optimizer, learning rate, loss, batch, epochs,
    early stopping and input noise. ``cfg`` is a ``train.TrainConfig`` or a list of them (the runs
    of one model: a swept value reads "batch 32 or 256 (by run)"); ``loss`` a model (its
    ``loss_name``) or a loss name such as "bce" (left out when None)."""
    cfgs = list(cfg) if isinstance(cfg, (list, tuple)) else [cfg]
    runs = [_training_parts(c, loss) for c in cfgs]
    clauses = [_merge(list(same)) for same in zip(*runs)]
    return "Training: " + ", ".join(c for c in clauses if c != "no input noise")


__all__ = ["model_summary", "training_line", "loss_label", "number", "LOSS_NAMES"]
