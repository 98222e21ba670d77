"""Every registered image model opens on every run-based image page without an error (a new family is covered by
registering); the text models have the Sentences page (tests/test_sentences.py)."""
import pytest

from aecore import list_models, model_spec
from tests.test_app import app, train_run

SMALL = {"recurrent": {"hidden_size": 8, "code_size": 4}, "conv": {"channels": (4,), "code_size": 4},
         "k-sparse": {"code_size": 32, "k": 4}, "pca": {"code_size": 8}, "gan": {"width": 8},
         "vae": {"hidden": (16,), "latent_size": 2}}


@pytest.mark.parametrize("name", list_models(modality="image"))
def test_run_pages_open_for_every_model(name):
    run = train_run(name, epochs=1, **SMALL.get(name, {}))
    at = app()
    at.sidebar.selectbox(key="ae.dataset").select("digits").run()
    at.sidebar.selectbox(key="ae.run").select(run).run()
    for page in ("pages/reconstructions.py", "pages/filters.py", "pages/generate.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        assert not at.error, (page, [e.value for e in at.error])
    for view in ("Levers", "Interpolation", "Diagnostics"):
        at.segmented_control(key="ae.gen.view").set_value(view).run()
        assert not at.exception and not at.error, (view, at.exception, [e.value for e in at.error])
    if not model_spec(name).capabilities.reconstructs:
        return
    at.switch_page("pages/denoising.py").run()
    at.multiselect(key="ae.denoise.runs.digits").set_value([run]).run()
    assert not at.exception and len(at.image) == 3
    at.switch_page("pages/contraction.py").run()
    at.multiselect(key="ae.contract.runs.digits").set_value([run]).run()
    at.slider(key="ae.contract.n").set_value(10).run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 3
