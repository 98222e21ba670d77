"""AppTest for the Latent space page."""
from tests.test_app import open_page, train_run


def _open(run_id):
    return open_page("pages/latent.py", run_id)


def test_latent_page_projects_links_and_decodes():
    run = train_run("stacked", epochs=2, hidden=(32,), code_size=6)
    at = _open(run)
    assert len(at.get("plotly_chart")) == 1
    assert at.get("download_button")
    # a chosen point: input, reconstruction and its 8 nearest codes
    at.number_input(key="ae.latent.point").set_value(7).run()
    first = at.image[0]
    assert first.captions[:2] == ["input", "recon"] and len(first.captions) == 10
    grid = next(img for img in at.image if "decodes over the selected box" in img.captions[0])
    assert "principal axes" in grid.captions[0]
    at.slider(key="ae.latent.grid").set_value(4).run()
    assert any("4×4 decodes" in c for img in at.image for c in img.captions)
    at.radio(key="ae.latent.mode").set_value("slerp").run()
    assert any("slerp path" in c for img in at.image for c in img.captions)
    at.toggle(key="ae.latent.precision").set_value(True).run()
    labels = [m.label for m in at.metric]
    assert "precision@10, codes" in labels and "precision@10, pixels" in labels
    at.toggle(key="ae.latent.side").set_value(True).run()
    assert not at.exception, at.exception
    assert len([m for m in at.metric if m.label == "10-NN label accuracy in 2-D"]) == 2


def test_latent_page_tsne_refuses_a_perplexity_too_large():
    run = train_run("stacked", epochs=1, hidden=(16,), code_size=4)
    at = _open(run)
    at.selectbox(key="ae.latent.method").select("tsne").run()
    at.slider(key="ae.latent.n").set_value(100).run()
    at.slider(key="ae.latent.perplexity").set_value(100).run()
    assert not at.exception, at.exception
    assert any("perplexity 100 needs more than 100 points" in e.value for e in at.error)
    at.slider(key="ae.latent.perplexity").set_value(10).run()
    assert not at.error and len(at.get("plotly_chart")) == 1


def test_two_dimensional_code_grids_in_code_space():
    run = train_run("stacked", epochs=1, hidden=(16,), code_size=2)
    at = _open(run)
    assert any("of code space" in c for img in at.image for c in img.captions)
