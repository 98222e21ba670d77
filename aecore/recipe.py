"""A run's recipe: model, hyperparameters, training settings and dataset, the values that differ from the defaults
only. It is what a share link carries, what "export as script" writes out, and how a talk preset finds its run in
the store; the first two write every value, so that a later change of a default does not change what they train.
Text from outside (a URL) is checked through the registry before anything is built."""
from __future__ import annotations

import dataclasses
import json
import math
import textwrap
from dataclasses import dataclass, field
from typing import Any

from .config import ConfigError, check_ranges, coerce, config_to_dict, param_specs
from .registry import describe_config, make_config, model_spec
from .training import TrainSettings

MAX_RECIPE_CHARS = 2000  # a share link's recipe; the longest real one (layer sizes of a deep net) is ~300
DATASET_FIELDS = ("input_shape", "vocab_size", "max_len")  # fixed by the dataset, never part of a recipe


def _non_defaults(config_cls: type, values: dict[str, Any]) -> dict[str, Any]:
    defaults = {s.name: s.default for s in param_specs(config_cls)}
    out = {}
    for k, v in values.items():
        if k in DATASET_FIELDS:
            continue
        d = defaults.get(k)
        same = list(v) == list(d) if isinstance(v, (list, tuple)) and isinstance(d, (list, tuple)) else v == d
        if not same:
            out[k] = list(v) if isinstance(v, tuple) else v
    return out


@dataclass(frozen=True)
class Recipe:
    """``model`` trained with ``config`` and ``settings`` (non-default values only) on ``dataset``."""

    model: str
    dataset: str
    config: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def make(cls, model: str, dataset: str, config: dict | None = None, settings: dict | None = None) -> "Recipe":
        """A checked recipe: an unknown model, field or out-of-range value raises :class:`ConfigError`."""
        try:
            spec = model_spec(model)
        except KeyError as e:
            raise ConfigError(e.args[0]) from e
        # a run's dataset fields are checked too; its size is checked where it is trained
        full = config_to_dict(describe_config(model, **(config or {})))
        values = coerce(TrainSettings, settings or {})
        train = TrainSettings(**values)
        check_ranges(train)
        return cls(model, str(dataset), _non_defaults(spec.config_cls, full),
                   _non_defaults(TrainSettings, dataclasses.asdict(train)))

    @classmethod
    def of_record(cls, record: Any) -> "Recipe":
        """The recipe of a saved run (a :class:`aecore.store.RunRecord`)."""
        settings = {k: v for k, v in record.settings.items() if k in {s.name for s in param_specs(TrainSettings)}}
        return cls.make(record.model, record.dataset, record.config, settings)

    def train_settings(self) -> TrainSettings:
        return TrainSettings(**coerce(TrainSettings, self.settings))

    def full_config(self) -> dict[str, Any]:
        """Every hyperparameter, defaults included (the dataset's own fields left out)."""
        full = config_to_dict(describe_config(self.model, **self.config))
        return {k: list(v) if isinstance(v, tuple) else v for k, v in full.items() if k not in DATASET_FIELDS}

    def full_settings(self) -> dict[str, Any]:
        return dataclasses.asdict(self.train_settings())

    def to_json(self) -> str:
        """Every value written out: a link holding only the non-defaults trained other models once a default
        changed (the denoiser's noise and KL-sparse's beta did, session 46). About 250-420 characters."""
        return json.dumps({"model": self.model, "dataset": self.dataset, "config": self.full_config(),
                           "settings": self.full_settings()}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "Recipe":
        """Parse and check a recipe from untrusted text; any problem raises :class:`ConfigError` saying what."""
        if not isinstance(text, str) or len(text) > MAX_RECIPE_CHARS:
            raise ConfigError(f"a recipe is at most {MAX_RECIPE_CHARS} characters")
        try:
            data = json.loads(text, parse_constant=lambda c: math.nan)
        except (ValueError, RecursionError) as e:
            raise ConfigError(f"the recipe is not valid JSON ({e})") from e
        if not isinstance(data, dict) or not isinstance(data.get("model"), str) or \
                not isinstance(data.get("dataset"), str) or \
                not all(isinstance(data.get(k, {}), dict) for k in ("config", "settings")):
            raise ConfigError("a recipe is an object with a model and a dataset name and config and settings objects")
        try:
            recipe = cls.make(data["model"], data["dataset"], data.get("config"), data.get("settings"))
            make_config(recipe.model, **recipe.config)  # someone's input: its size too, before it is offered
            return recipe
        except (TypeError, ValueError) as e:  # ConfigError is a ValueError
            raise ConfigError(str(e)) from e

    def matches(self, record: Any) -> bool:
        """Whether a saved run was trained from this recipe."""
        try:
            return record.model == self.model and record.dataset == self.dataset and Recipe.of_record(record) == self
        except (ConfigError, KeyError, TypeError, ValueError):  # a run of a model or field this version lacks
            return False

    def served_by(self, record: Any) -> bool:
        """Whether a saved run is this recipe, or this recipe trained for more epochs (a talk preset's 10-epoch
        seed recipe took the user's 30-epoch run of it for another run, and trained one in front of the audience)."""
        try:
            if record.model != self.model or record.dataset != self.dataset:
                return False
            other = Recipe.of_record(record)
        except (ConfigError, KeyError, TypeError, ValueError):  # a run of a model or field this version lacks
            return False
        if other.config != self.config:
            return False
        mine, theirs = self.train_settings(), other.train_settings()
        return theirs == mine or (theirs.epochs > mine.epochs
                                  and dataclasses.replace(theirs, epochs=mine.epochs) == mine)

    def script(self, expected: dict[str, float] | None = None, run_id: str = "") -> str:
        """A short Python file that trains this recipe with aecore, saves the run and prints its test metrics
        (beside ``expected``, the original run's, when given)."""
        source = f"run {run_id}" if run_id else "this recipe"
        lines = [
            f'"""Reproduces {source}: {self.model} on {self.dataset}, seed {self.settings.get("seed", 0)}.',
            "Run it with `python` where aecore is installed (pip install -r requirements.txt in the explorer's",
            'folder); the run is saved to the run store ($AECORE_RUNS_DIR or the user data folder)."""',
            "from aecore import RunStore, TrainSettings, TrainingJob, load_dataset",
            "",
            "config = {", *(f"    {k!r}: {v!r}," for k, v in self.full_config().items()), "}",
            textwrap.fill("settings = TrainSettings(" + ", ".join(f"{k}={v!r}" for k, v in
                                                                  self.full_settings().items()) + ")",
                          width=110, subsequent_indent="    ", break_long_words=False),
            f"dataset = load_dataset({self.dataset!r})",
            f"job = TrainingJob({self.model!r}, config, dataset, settings, store=RunStore()).start()",
            "job.join()",
            "if job.record is None:",
            '    raise SystemExit(f"training {job.progress().status}: {job.progress().message}")',
            'print("run", job.run_id, job.record.status)',
            'print("test metrics:", job.record.metrics)',
        ]
        if expected:
            lines.append(f'print("the original run:", {expected!r})')
        return "\n".join(lines) + "\n"
