"""Model library: every saved run with its model, dataset, key metric, date, size and training time; rename,
download as a zip, export as a script that retrains it, delete (after a confirmation), and upload a run's zip back
(checked by the run store before anything is written)."""

import pandas as pd
import streamlit as st

from aecore import RunStoreError
from aecore.recipe import Recipe
from pages import ui
from pages.ui import figures, runs, share, state

ADDED = "ae.library.added"  # (ok, message) of the last upload, shown after the rerun that selects its run
STOPPED = "stopped runs"  # LIB_CONFIRM's value while the delete of this session's stopped runs awaits confirmation

ui.page_setup()
st.title("Model library")
store = state.run_store()
listing = store.list()
records = [e for e in listing if e.record is not None]
damaged = [e for e in listing if e.record is None]


@st.cache_data(max_entries=16, show_spinner="Packing the run…")
def _export(root: str, run_id: str, mtime: float) -> bytes:
    from aecore import RunStore
    return RunStore(root).export(run_id)


def _size(run_id: str) -> float:
    try:
        return store.size(run_id) / 2**20
    except (OSError, RunStoreError):
        return float("nan")


with st.expander("Upload a run (a zip downloaded from a library like this one)"):
    upload = st.file_uploader("Run zip", type=["zip"], key="ae.library.upload", label_visibility="collapsed")
    if upload is not None and st.button("Add it to the library", key="ae.library.import", type="primary"):
        try:
            new_id = store.import_(upload.getvalue())
        except RunStoreError as e:
            st.error(f"Not added: {e}")
        else:  # the sidebar picked the run only where its dataset was the sidebar's ("pick it": it was not there)
            ds = store.record(new_id).dataset
            if ds in state.dataset_names():
                st.session_state[state.PENDING_RUN] = new_id
                st.session_state[state.PENDING_DATASET] = ds
                st.session_state[ADDED] = (True, f"Added as **{new_id}**, a run on {state.dataset_title(ds)}: the "
                                                 "sidebar shows it now.")
            else:
                st.session_state[ADDED] = (False, f"Added as **{new_id}**, but its dataset {ds} is not on this "
                                                  "server, so the pages cannot show it (an upload: add it on **Your "
                                                  "images**).")
            st.rerun()
    if ADDED in st.session_state:
        ok, message = st.session_state.pop(ADDED)
        (st.success if ok else st.warning)(message)

if not records:
    st.info("No saved runs yet: train one on the **Train** page, or upload a run's zip above.")
    runs.offer(("Train a model", runs.TRAIN_PAGE, None))
else:
    datasets = sorted({e.record.dataset for e in records})
    shown_ds = share.widget("datasets", st.multiselect, "Datasets", datasets, key="ae.library.datasets",
                            value=[], placeholder="all datasets")
    rows = [e for e in records if not shown_ds or e.record.dataset in shown_ds]
    # the id second: last, it was cut to "20261128-031554-st" at 1280 px, and it is what the CLI and links take;
    # the metric third: after model and dataset (which the name says already) it was cut off at 1280 px
    table = pd.DataFrame([{
        "name": e.record.title, "id": e.id, "metric": e.record.headline_text, "model": e.record.model,
        "dataset": e.record.dataset, "status": e.record.status,
        "created": pd.Timestamp.fromtimestamp(e.record.created),  # local time, as the sidebar's labels
        "size (MB)": round(_size(e.id), 2), "training time": figures.fmt_seconds(e.record.seconds)}
        for e in rows])
    # dates as the sidebar's labels write them (the column was cut to "2026-11-2" at 1280 px), sorted as dates
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"created": st.column_config.DatetimeColumn(format="D MMM HH:mm")})
    st.caption(f"{len(rows)} of {len(records)} saved runs, newest first, in {store.root}.")
    # the runs this session stopped part way (Stop, or Retrain on change, which stops one run a change): theirs to
    # clear in one go; other sessions' runs are never in this list
    saved = {e.id: e.record for e in records}
    stopped = [rid for rid in state.jobs() if rid in saved and saved[rid].status == "stopped"]
    if stopped:
        if st.session_state.get(state.LIB_CONFIRM) == STOPPED:
            if ui.confirmed(f"Delete the {len(stopped)} {runs.runs_word(len(stopped))} this session stopped part way "
                            f"({', '.join(stopped[:4])}{' …' if len(stopped) > 4 else ''}) for good?",
                            "ae.library.delete_stopped", state.LIB_CONFIRM):
                try:
                    for rid in stopped:
                        store.delete(rid)
                except (OSError, RunStoreError) as e:
                    st.error(f"Not all were deleted: {e}")
                else:
                    st.rerun()
        elif st.button(f"Delete the {len(stopped)} {runs.runs_word(len(stopped))} this session stopped part way…",
                       key="ae.library.delete_stopped"):
            st.session_state[state.LIB_CONFIRM] = STOPPED
            st.rerun()

    ids = [e.id for e in rows]
    if ids:
        labels = runs.unique_labels({e.id: e.record.label for e in rows})
        run_id = share.widget("run_id", st.selectbox, "Run", ids, key="ae.library.run", format_func=labels.get)
        record = store.record(run_id)
        c1, c2 = st.columns([3, 2])
        with c1.form("ae.library.rename_form", border=False):
            name = st.text_input("Name", record.name, max_chars=80, key=f"ae.library.name.{run_id}",
                                 placeholder=record.title)
            if st.form_submit_button("Rename"):
                try:
                    store.rename(run_id, name)
                except RunStoreError as e:
                    st.error(str(e))
                else:
                    st.rerun()
        mtime = (store.root / run_id / "model.safetensors").stat().st_mtime
        c2.download_button("Download (zip)", _export(str(store.root), run_id, mtime), f"{run_id}.zip",
                           mime="application/zip", key="ae.library.download", width="stretch",
                           on_click="ignore")
        try:
            script = Recipe.of_record(record).script(record.metrics, run_id)
        except (ValueError, KeyError) as e:  # ConfigError is a ValueError: a model this version lacks
            c2.caption(f"No script: {e}")
        else:
            c2.download_button("Export as script (.py)", script, f"train_{run_id.replace('-', '_')}.py",
                               mime="text/x-python", key="ae.library.script", width="stretch", on_click="ignore",
                               help="A short Python file that retrains this run with aecore: same seed, same numbers")
        if st.session_state.get(state.LIB_CONFIRM) == run_id:
            if ui.confirmed(f"Delete **{record.title}** ({run_id}) for good?", "ae.library.delete",
                            state.LIB_CONFIRM):
                try:
                    store.delete(run_id)
                except (OSError, RunStoreError) as e:  # a read-only store, or gone already (another tab)
                    st.error(f"Not deleted: {e}")
                else:
                    st.rerun()
        elif st.button("Delete…", key="ae.library.delete"):
            st.session_state[state.LIB_CONFIRM] = run_id
            st.rerun()

if damaged:
    st.subheader("Damaged runs")
    st.caption("These folders are not complete runs; the reason is given. Deleting one removes its folder.")
    st.dataframe(pd.DataFrame([{"folder": e.id, "problem": e.error} for e in damaged]), hide_index=True)
    bad = st.selectbox("Folder", [e.id for e in damaged], key="ae.library.damaged")
    if st.button("Delete this folder", key="ae.library.delete_damaged"):
        try:
            store.delete(bad)
        except (OSError, RunStoreError) as e:
            st.error(f"Could not delete it: {e}")
        st.rerun()
