"""aecore: the UI-free engine of the autoencoder explorer (models, data, training, run store)."""
from .config import ConfigError, ParamSpec, param, param_specs
from .data import Dataset, DatasetError, list_datasets, load_dataset
from .jobs import TrainingJob, build_model
from .metrics import evaluate
from .models.base import AEOutput, Autoencoder
from .registry import create_model, list_models, make_config, model_spec
from .store import RunRecord, RunStore, RunStoreError
from .training import Progress, TrainSettings, pick_device, train

__all__ = ["ConfigError", "ParamSpec", "param", "param_specs", "Dataset", "DatasetError", "list_datasets",
           "load_dataset", "TrainingJob", "build_model", "evaluate", "AEOutput", "Autoencoder", "create_model",
           "list_models", "make_config", "model_spec", "RunRecord", "RunStore", "RunStoreError", "Progress",
           "TrainSettings", "pick_device", "train"]
