"""Writers of upstream run folders for the tests, following the upstream writers byte for byte.

Both upstream branches write `parameters.txt` as `key + " = " + str(value) + "\\n"`, and
`loss.dat` as a header of `"{i}:{name}\\t"` fields and a newline, then per epoch the epoch as
`"{:<12d}"` (no tab after it) and every other value as `"{:<12.3e}\\t"`, then a newline. Main's
`run_trial.py` writes its JSON files with `json.dump(payload, indent=2, sort_keys=True)` and a
newline. The parameter sets below are what each branch's own drivers record (names and value
reprs as `str()` prints them), with numbers chosen here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: parameters.txt of upstream main (ml_pytorch.build_default_parms via run_trial.py), in order.
MAIN_PARAMETERS: dict[str, str] = {
    "database_list": "['data/dummy_asymptotic.h5', 'data/dummy_asymptotic.h5']",
    "stable_database_list": "['data/stable_oneflavor_database.h5', "
    "'data/stable_random_database.h5', 'data/stable_zerofluxfac_database.h5']",
    "samples_per_database": "1000000",
    "test_size": "0.1",
    "epochs": "3",
    "output_every": "2",
    "average_heavies_in_final_state": "False",
    "conserve_lepton_number": "True",
    "random_seed": "42",
    "loader.batch_size": "10",
    "loader.num_workers": "1",
    "loader.prefetch_factor": "1",
    "sampler": "<class 'torch.utils.data.sampler.WeightedRandomSampler'>",
    "weightedrandomsampler.epoch_num_samples": "10",
    "scalar_activation": "<function silu at 0x7f8cbbabbe20>",
    "nonscalar_activation": "<built-in method sigmoid of type object at 0x7f8cd7ecea40>",
    "tensor_product_class": "norm",
    "do_learn_task_weights": "False",
    "task_weight_stability": "1.0",
    "task_weight_F4": "1.0",
    "task_weight_unphysical": "1",
    "task_weight_growthrate": "1.0",
    "do_augment_final_stable": "False",
    "do_unphysical_check": "True",
    "nhidden_shared": "1",
    "nhidden_stability": "3",
    "nhidden_growthrate": "3",
    "nhidden_F4": "3",
    "irreps_hidden": "4x0e+4x1o",
    "dropout_probability": "0.0",
    "do_batchnorm": "False",
    "do_fdotu": "True",
    "activation": "<class 'torch.nn.modules.activation.LeakyReLU'>",
    "op": "<class 'torch.optim.adamw.AdamW'>",
    "adamw.amsgrad": "False",
    "adamw.weight_decay": "0",
    "adamw.fused": "True",
    "learning_rate": "0.0002",
    "patience": "500",
    "cooldown": "500",
    "factor": "0.5",
    "warmup_iters": "0",
    "min_lr": "0",
    "NF": "3",
    "device": "cpu",
    "syne_tune": "{'report': False, 'metric': 'validation_score', 'mode': 'min', "
    "'resource_attr': 'epoch', 'max_resource_attr': 'epochs', 'config_space': {'epochs': 10, "
    "'learning_rate': {'type': 'loguniform', 'lower': 1e-05, 'upper': 0.001}, "
    "'loader.batch_size': {'type': 'randint', 'lower': 8, 'upper': 64}}}",
}

#: loss.dat columns of upstream main (epoch first).
MAIN_COLUMNS = (
    ["epoch"]
    + [
        f"{task}_{split}_{kind}"
        for task in ("F4", "growthrate", "unphysical")
        for split in ("train", "test")
        for kind in ("loss", "max")
    ]
    + ["train_loss", "test_loss", "validation_score"]
    + ["weight_growthrate", "weight_F4", "weight_unphysical", "learning_rate"]
)

#: parameters.txt of upstream not-main (jmcguig_tests/run_many_models.py, then the defaults
#: that ml_trainmodel.train_asymptotic_model adds), in order.
NOT_MAIN_PARAMETERS: dict[str, str] = {
    "database_list": "['/data/asymptotic_M1-NuLib-old.h5']",
    "stable_database_list": "['/data/stable_M1-Nulib-7ms_rl2.h5', "
    "'/data/stable_M1-Nulib-7ms_rl3.h5']",
    "samples_per_database": "200000",
    "random_samples_per_database": "200000",
    "test_size": "0.2",
    "epochs": "3",
    "output_every": "1",
    "average_heavies_in_final_state": "False",
    "conserve_lepton_number": "direct",
    "random_seed": "42",
    "batch_size": "4096",
    "epoch_num_samples": "200000",
    "sampler": "<class 'torch.utils.data.sampler.WeightedRandomSampler'>",
    "do_learn_task_weights": "False",
    "loss_multiplier_stable": "1.0",
    "loss_multiplier_ndens": "1.0",
    "loss_multiplier_fluxmag": "1.0",
    "loss_multiplier_direction": "1.0",
    "loss_multiplier_growthrate": "1.0",
    "loss_multiplier_unphysical": "10.0",
    "do_augment_permutation": "False",
    "do_augment_final_stable": "False",
    "do_unphysical_check": "False",
    "nhidden_shared": "1",
    "nhidden_stability": "1",
    "nhidden_growthrate": "1",
    "nhidden_asymptotic": "1",
    "nhidden_density": "1",
    "nhidden_flux": "1",
    "width_shared": "32",
    "width_stability": "32",
    "width_growthrate": "32",
    "width_density": "32",
    "width_flux": "32",
    "dropout_probability": "0.0",
    "do_batchnorm": "True",
    "do_fdotu": "True",
    "activation": "<class 'torch.nn.modules.activation.LeakyReLU'>",
    "op": "<class 'torch.optim.adamw.AdamW'>",
    "adamw.amsgrad": "False",
    "adamw.weight_decay": "0",
    "learning_rate": "0.001",
    "adamw.fused": "True",
    "factor": "0.5",
    "patience": "50",
    "cooldown": "20",
    "warmup_iters": "10",
    "min_lr": "1e-07",
    "NF": "3",
    "device": "cpu",
    "use_pcgrad": "False",
    "weight_decay": "0.0",
    "amsgrad": "False",
    "fused": "False",
}

_NOT_MAIN_TASKS = ("stability", "ndens", "fluxmag", "direction", "growthrate")
#: loss.dat columns of upstream not-main with do_unphysical_check off (epoch first).
NOT_MAIN_COLUMNS = (
    ["epoch"]
    + [
        f"{task}_{split}_{kind}"
        for split in ("train", "test")
        for task in _NOT_MAIN_TASKS
        for kind in ("loss", "max")
    ]
    + ["train_loss", "test_loss", "ELN_violation", "learning_rate"]
)


def parameters_text(parameters: dict[str, Any]) -> str:
    """parameters.txt: one `key = str(value)` line per parameter."""
    return "".join(key + " = " + str(value) + "\n" for key, value in parameters.items())


def loss_text(columns: list[str], rows: list[dict[str, float]]) -> str:
    """loss.dat: the `N:name` header, then one row per epoch in upstream's fixed-width format."""
    out = "".join(("{:d}:" + name + "\t").format(i + 1) for i, name in enumerate(columns))
    out += "\n"
    for row in rows:
        for name in columns:
            if name == "epoch":
                out += f"{int(row[name]):<12d}"
            else:
                out += f"{row[name]:<12.3e}\t"
        out += "\n"
    return out


def json_text(payload: dict[str, Any]) -> str:
    """A trial_*.json file as run_trial.py writes it."""
    return json.dumps(payload, indent=2, sort_keys=True) + "\n"


def loss_rows(columns: list[str], epochs: int, scale: float) -> list[dict[str, float]]:
    """Made-up figures that decay with the epoch; weights 1, a constant learning rate."""
    rows = []
    for epoch in range(1, epochs + 1):
        row: dict[str, float] = {"epoch": epoch}
        for i, name in enumerate(columns[1:], start=1):
            if name.startswith("weight_"):
                row[name] = 1.0
            elif name == "learning_rate":
                row[name] = scale
            else:
                row[name] = (i + 1) * scale * 1e3 / epoch * (3.0 if name.endswith("_max") else 1.0)
        rows.append(row)
    return rows


def write_run(
    folder: Path,
    branch: str,
    learning_rate: float,
    epochs: int = 3,
    checkpoints: tuple[int, ...] = (2,),
    trial_files: bool = True,
) -> list[dict[str, float]]:
    """An upstream run folder of `branch` (main or not-main); returns its loss.dat rows."""
    folder.mkdir(parents=True)
    parameters = dict(MAIN_PARAMETERS if branch == "main" else NOT_MAIN_PARAMETERS)
    parameters["learning_rate"] = repr(learning_rate)
    parameters["epochs"] = str(epochs)
    columns = MAIN_COLUMNS if branch == "main" else NOT_MAIN_COLUMNS
    rows = loss_rows(columns, epochs, learning_rate)
    (folder / "parameters.txt").write_text(parameters_text(parameters))
    (folder / "loss.dat").write_text(loss_text(columns, rows))
    if branch == "main" and trial_files:
        resolved = {k: _serialized(v) for k, v in parameters.items()}
        (folder / "trial_config_resolved.json").write_text(json_text(resolved))
        summary = {
            "status": "completed",
            "metric": "validation_score",
            "mode": "min",
            "epochs_reported": epochs,
            "best_epoch": epochs,
            "best_metric_value": rows[-1]["validation_score"],
            "final_epoch": epochs,
            "final_metric_value": rows[-1]["validation_score"],
            # the history keeps numbers only: the tensors (F4_*_max, growthrate_*_max) drop out
            "best_metrics": {
                k: v for k, v in rows[-1].items() if not k.endswith("_max") or "unphysical" in k
            },
            "final_metrics": rows[-1],
        }
        text = json_text(summary)
        # run_trial.py stops at the first tensor (F4_test_max) of final_metrics: cut there
        cut = text.rindex('"F4_test_max": ') + len('"F4_test_max": ')
        (folder / "trial_summary.json").write_text(text[:cut])
    for epoch in checkpoints:
        (folder / f"model{epoch}_cpu.pt").write_bytes(b"not really a model " + bytes([epoch]))
    return rows


def _serialized(raw: str) -> Any:
    """The JSON form run_trial.py gives a parameter (classes and functions by dotted name)."""
    import ast

    if raw.startswith("<class '"):
        return raw[len("<class '") : -2]
    if raw.startswith("<function "):
        return "torch.nn.functional." + raw.split()[1]
    if raw.startswith("<built-in method "):
        return "torch." + raw.split()[2]
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw
