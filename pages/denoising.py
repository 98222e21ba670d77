"""Denoising demo: corrupt test images, run each chosen model on the same noisy inputs, and score every output by
its PSNR against the clean image, beside the noisy input's own PSNR."""
import numpy as np
import pandas as pd
import streamlit as st

from aecore.analysis import denoising_scores
from aecore.noise import DROPOUT_HELP, LEVEL_HELP, NOISE_KINDS
from pages import ui
from pages.ui import figures, runs, share, state

ui.page_setup()
st.title("Denoising")
presenting = ui.presenting()
if not presenting:  # on a projector the rows' headings say it
    st.caption("A plain autoencoder next to a denoising one shows what training on corrupted inputs buys. "
               "PSNR (dB) is measured against the clean image; higher is better.")
dataset = state.current_dataset(modality="image")
choices = runs.usable_runs(dataset, prefer=("denoising", "stacked"), reconstructs=True)
if not choices:
    st.info("No run on this dataset reconstructs yet. Train a **denoising** and a **stacked** model (or use the Compare page's "
            "*regularizers* preset) first.")
    runs.offer(("Train a denoising autoencoder", runs.TRAIN_PAGE, {"model": "denoising"}),
               ("Compare: regularizers", runs.COMPARE_PAGE, {"preset": "regularizers"}))
    st.stop()

# the runs on a row of their own: in a quarter of it, the second run's chip was hidden behind the first; on a
# projector folded beside the noise's controls, so that the plain run's row is on a 1280x720 screen too
if presenting:
    c1, c2, c3, c4, c5 = st.columns([2, 2, 2, 1, 1], vertical_alignment="bottom")
    with c1:
        picked = runs.picker(choices, f"ae.denoise.runs.{dataset.name}", value=list(choices)[:2])
else:
    picked = runs.picker(choices, f"ae.denoise.runs.{dataset.name}", value=list(choices)[:2])
    c2, c3, c4, c5 = st.columns([2, 2, 1, 1], vertical_alignment="bottom")  # New noise beside them: a row saved
shown = [r for r in (runs.load_run(i) for i in picked) if r is not None]
if not presenting:  # one side of the comparison missing: a new user with the seed recipe's run saw it alone
    have = {runs.model_of(i) for i in choices}
    missing = [(f"Train a {name}", runs.TRAIN_PAGE, {"model": models[0]})
               for name, models in (("denoising autoencoder", ("denoising",)),
                                    ("plain autoencoder", ("stacked", "tied"))) if not have & set(models)]
    if missing:
        st.caption("The page compares a plain autoencoder with a denoising one; train the other:")
        runs.offer(*missing)
# the noise the first denoising run was trained with, until the user picks one: a denoiser scores best on its own
# (full MNIST: one trained on dropout 0.5 gives 18.1 dB on dropout, 15.2 on masking 0.5; bench/README)
trained = next((r.model.config for r in shown if getattr(r.model.config, "noise", None) in NOISE_KINDS), None)
kind = share.widget("noise", c2.selectbox, "Noise", list(NOISE_KINDS), value=trained.noise if trained else "dropout",
                    key="ae.denoise.kind", help=f"{DROPOUT_HELP}; the first denoising run's noise by default")
level = share.widget("level", c3.slider, "Level", min_value=0.0, max_value=1.0,
                     value=float(trained.noise_level) if trained else 0.5, step=0.05, key="ae.denoise.level",
                     help=LEVEL_HELP)
most = max(1, min(24, len(dataset.x_test)))  # an uploaded set of 24 pictures has 4 test images (an IndexError)
count = share.widget("count", c4.number_input, "Images", min_value=1, max_value=most, value=min(10, most),
                     key="ae.denoise.count")
if not picked:
    st.info("Choose at least one run.")
    st.stop()
if not shown:
    st.stop()
seed = st.session_state.setdefault(state.DENOISE_SEED, 0)
if c5.button("New noise", key="ae.denoise.reseed"):
    st.session_state[state.DENOISE_SEED] = seed = seed + 1
x_all = dataset.x_test[:1000]
scores = denoising_scores({r.id: r.model for r in shown}, x_all, kind, level, seed=seed)

table = [{"output of": "noisy input (no model)", "run": "",
          "mean PSNR (dB)": float(scores["psnr"]["noisy input"].mean())}]
table += [{"output of": r.model.registry_name, "run": r.id, "mean PSNR (dB)": float(scores["psnr"][r.id].mean())}
          for r in shown]
if not ui.presenting():  # for an audience, the means go in the rows' headings and the images come first
    st.dataframe(pd.DataFrame(table), hide_index=True,
                 column_config={"mean PSNR (dB)": st.column_config.NumberColumn(format="%.1f dB")})
    st.caption(f"Means over the first {len(x_all)} test images, all corrupted with the same noise.")

idx = np.arange(min(count, len(x_all)))
shape = dataset.image_shape


def clean_row() -> None:
    st.markdown("**Clean**")
    figures.images(x_all[idx], shape, [dataset.class_names[dataset.y_test[i]] for i in idx])


if not ui.presenting():
    clean_row()
# on a projector the means only, in the headings: each image's PSNR under it put the plain run below 720
each = "" if presenting else "; each image's under it"
st.markdown(f"**Noisy input** ({kind} {level:g}) — mean PSNR {table[0]['mean PSNR (dB)']:.1f} dB{each}")
figures.images(scores["noisy"][idx], shape,
               None if presenting else [f"{scores['psnr']['noisy input'][i]:.1f} dB" for i in idx])
for r, row in zip(shown, table[1:]):
    st.markdown(f"**{r.model.registry_name}** · {r.id} — mean PSNR {row['mean PSNR (dB)']:.1f} dB{each}")
    figures.images(scores["outputs"][r.id][idx], shape,
                   None if presenting else [f"{scores['psnr'][r.id][i]:.1f} dB" for i in idx])
if presenting:  # noisy in, cleaned out, on a 1280x720 projector; the originals after them
    clean_row()
