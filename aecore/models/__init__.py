"""Model families, one module each. Importing this package imports every module in it, which registers them, so a
new family is one new file here and nothing else."""
import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    if _info.name not in ("base", "blocks"):
        importlib.import_module(f"{__name__}.{_info.name}")
