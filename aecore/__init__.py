"""aecore: the UI-free engine of the autoencoder explorer (models, data, training, run store)."""
from .config import ConfigError, ParamSpec, param, param_specs
from .data import DataSource, Dataset, DatasetError, TextDataset, list_datasets, load_dataset
from .jobs import TrainingJob, build_model
from .metrics import evaluate
from .models.base import AEOutput, Autoencoder, Capabilities, Model, ModelOutput, StepContext
from .registry import create_model, list_models, make_config, model_spec
from .seeding import seeded_init
from .store import RunRecord, RunStore, RunStoreError
from .training import Progress, TrainSettings, pick_device, train

__all__ = ["ConfigError", "ParamSpec", "param", "param_specs", "DataSource", "Dataset", "DatasetError", "TextDataset",
           "list_datasets", "load_dataset", "TrainingJob", "build_model", "evaluate", "AEOutput", "Autoencoder",
           "Capabilities", "Model", "ModelOutput", "StepContext", "create_model", "list_models", "make_config",
           "model_spec", "seeded_init", "RunRecord", "RunStore", "RunStoreError", "Progress", "TrainSettings",
           "pick_device", "train"]
