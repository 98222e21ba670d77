"""Your images: upload a zip of PNG/JPEG files (labels from folder names) or an .npz of arrays; they are made
grayscale and one size, previewed, and become a dataset every page can use, for this session or, saved, later."""
import numpy as np
import pandas as pd
import streamlit as st

from aecore import DatasetError
from aecore import images as user_images
from aecore.viz import mosaic
from pages import ui
from pages.ui import runs, state

ui.page_setup()
st.title("Your images")
st.caption(f"A **.zip** of PNG or JPEG files (put each class in its own folder, say `cats/…`, `dogs/…`, to label "
           f"them) or an **.npz** with an array `x` (N×H×W, values 0–1 or 0–255) and optional labels `y` (whole "
           f"numbers or class names). "
           f"Limits: {user_images.MAX_UPLOAD_BYTES >> 20} MB a file, {user_images.MAX_IMAGES:,} images, "
           f"{user_images.MAX_IMAGE_PIXELS:,} pixels an image. Nothing is kept unless you save it.")
PREVIEW = "ae.images.preview"  # (file name, Dataset, title, files left out) of the last upload converted

CONFIRM = "ae.images.confirm"  # the saved dataset whose delete awaits confirmation
DELETED = "ae.images.deleted"  # the message of the last delete


def saved_section() -> None:
    """The uploads saved for later, with a delete (confirmed): one saved by mistake stayed in every session's
    sidebar for good."""
    saved = user_images.saved_datasets()
    if DELETED in st.session_state:
        ok, message = st.session_state.pop(DELETED)
        (st.success if ok else st.error)(message)
    if not saved:
        return
    with st.expander(f"Your saved datasets ({len(saved)})", expanded=CONFIRM in st.session_state):
        titles = {info.name: info.title for info in saved}
        name = st.selectbox("Saved dataset", list(titles), format_func=titles.get, key="ae.images.saved_pick")
        if st.session_state.get(CONFIRM) != name:
            if st.button("Delete…", key="ae.images.delete"):
                st.session_state[CONFIRM] = name
                st.rerun()
            return
        trained = sum(1 for e in state.run_store().list() if e.record is not None and e.record.dataset == name)
        question = f"Delete **{titles[name]}** for good?" + (
            f" The {trained} {runs.runs_word(trained)} trained on it stay in the library, but no page can show "
            f"them without it." if trained else "")
        if ui.confirmed(question, "ae.images.delete", CONFIRM):
            try:
                user_images.delete_saved_dataset(name)
            except DatasetError as e:
                st.session_state[DELETED] = (False, f"Not deleted: {e}")
            else:
                st.session_state[DELETED] = (True, f"Deleted {titles[name]}.")
            st.rerun()


saved_section()
upload = st.file_uploader("Images", type=["zip", "npz"], key="ae.images.file")
c1, c2, c3 = st.columns([2, 2, 3])
side = c1.selectbox("Size (pixels a side)", user_images.SIDES, index=user_images.SIDES.index(28),
                    key="ae.images.side", help="Every image is padded to a square and resized to this")
invert = c2.radio("Invert", ["auto", "yes", "no"], horizontal=True, key="ae.images.invert",
                  help="auto: a light background becomes dark, as MNIST's strokes are white on black")
title = c3.text_input("Name", value=upload.name.rsplit(".", 1)[0] if upload else "", max_chars=60,
                      key="ae.images.title")
if upload is not None and st.button("Convert", type="primary", key="ae.images.convert"):
    with st.spinner("Reading the images…"):
        skipped: list[str] = []  # one damaged picture among many is left out, not the reason to refuse them all
        try:
            ds = user_images.dataset_from_upload(upload.getvalue(), upload.name, title, side, invert, skipped)
        except DatasetError as e:
            st.error(f"Not loaded: {ui.plain(str(e))}")
            st.session_state.pop(PREVIEW, None)
        else:
            st.session_state[PREVIEW] = (upload.name, ds, title or upload.name, skipped)

found = st.session_state.get(PREVIEW)
if found is None:
    st.info("Upload a file and press **Convert** to see a preview.")
    st.stop()
name, ds, shown_title, skipped = found
if skipped:
    st.warning(f"**{len(skipped)} {'file' if len(skipped) == 1 else 'files'} left out**, the rest loaded: "
               + "; ".join(map(ui.plain, skipped[:5]))
               + (f"; and {len(skipped) - 5} more" if len(skipped) > 5 else ""))
counts = np.bincount(np.concatenate([ds.y_train, ds.y_test]), minlength=len(ds.class_names))
st.subheader(f"{ui.plain(shown_title)}: {len(ds.x_train) + len(ds.x_test):,} images, "
             f"{ds.image_shape[0]}×{ds.image_shape[1]}")
st.image(mosaic(ds.x_train[:48], ds.image_shape, ncols=16, scale=max(1, 56 // ds.image_shape[1])),
         caption="The first 48 training images, as the models will see them")
st.dataframe(pd.DataFrame({"class": ds.class_names, "images": counts}), hide_index=True)
st.caption(f"{len(ds.x_train):,} for training, {len(ds.x_test):,} held out for testing, split by class.")


def _use() -> None:
    st.session_state[state.USER_DATASETS][ds.name] = (shown_title, ds)
    st.session_state[state.DATASET] = ds.name


def _save() -> None:
    try:
        path = user_images.save_dataset(ds, shown_title)
    except DatasetError as e:
        st.session_state[SAVED] = (False, str(e))
    else:
        st.session_state[SAVED] = (True, f"Saved as {path.name}: the sidebar lists it from now on, in every session.")
        _use()


SAVED = "ae.images.saved"  # (ok, message) of the last save
b1, b2, _ = st.columns([1, 1, 3])
b1.button("Use it in this session", key="ae.images.use", on_click=_use, type="primary", width="stretch")
b2.button("Save it for later", key="ae.images.save", on_click=_save, width="stretch")
if SAVED in st.session_state:
    ok, message = st.session_state.pop(SAVED)
    (st.success if ok else st.error)(message)
if st.session_state.get(state.DATASET) == ds.name:
    st.success("This is the sidebar's dataset now: train on it on the **Train** page.")
    runs.offer(("Train a model on it", runs.TRAIN_PAGE, None))
