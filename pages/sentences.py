"""Sentences page: a sentence VAE's homotopy between two sentences (Bowman et al. 2016), samples from its prior and
several decodes of one sentence, and whether its decoder uses z at all."""
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from aecore import model_spec
from aecore.models.sentence_vae import DECODINGS
from aecore.text import SentenceError, homotopy, parses, sentence_batch, words_of
from pages import ui
from pages.ui import runs, share, state

ui.page_setup()
st.title("Sentences")
dataset = state.current_dataset(modality="text")
handle = runs.require_run(dataset, samples=True,
                         suggest=("Train a sentence VAE", {"model": "sentence-vae"}))
model = handle.model
caps = model_spec(model.registry_name).capabilities
vocab = runs.vocab_of(handle)
max_len = model.config.max_len
VIEWS = ("Homotopy", "Samples and decodes", "Does it use z?")
GRAMMAR = dataset.name == "grammar"  # its decodes can be checked by the grammar's parser


@st.cache_data(max_entries=8, show_spinner=False)
def corpus_sentences(name: str) -> list[str]:
    """The held-out sentences, to start from and to pick pairs from."""
    return [dataset.decode(row) for row in dataset.test_tokens]


def decoding_controls() -> dict:
    c1, c2, c3 = st.columns(3)
    method = share.widget("decode", c1.segmented_control, "Decoding", list(DECODINGS), value="greedy",
                          key="ae.sent.decode",
                                  help="greedy: the likeliest word each step; beam: the likeliest sentence among "
                                       "a beam of candidates; sample: words drawn at a temperature") or "greedy"
    width = share.widget("width", c2.slider, "Beam width", min_value=1, max_value=16, value=5, key="ae.sent.width",
                         disabled=method != "beam")
    temperature = share.widget("temperature", c3.slider, "Temperature", min_value=0.1, max_value=2.0, value=1.0,
                               step=0.05, key="ae.sent.temperature",
                            disabled=method != "sample", help="below 1 sharper, above 1 more adventurous")
    return {"method": method, "width": width, "temperature": temperature}


def checked(sentences: list[str]):
    """The sentences as a batch, or ``None`` after saying what is wrong; words the vocabulary lacks are named."""
    try:
        batch, unknown = sentence_batch(sentences, vocab, max_len)
    except SentenceError as e:
        st.error(f"That sentence cannot be encoded: {ui.plain(str(e))}.")
        return None
    missing = sorted({w for words in unknown for w in words})
    if missing:
        st.warning(f"Not in this model's vocabulary, read as `<unk>`: {', '.join(map(ui.plain, missing[:12]))}"
                   + (f" and {len(missing) - 12} more" if len(missing) > 12 else ""))
    return batch


def pick_pair() -> None:
    corpus = corpus_sentences(dataset.name)
    a, b = np.random.default_rng().choice(len(corpus), 2, replace=False)
    st.session_state[state.SENT_A], st.session_state[state.SENT_B] = corpus[a], corpus[b]


def sentence_table(rows: dict) -> None:
    """A static table of ``rows``, whose last column holds sentences: it wraps them (an interactive one cut PTB's
    sentences at the column's edge, and gave "t = 0.00" a quarter of the width); on the grammar, a column says
    which sentences its parser accepts. Its cells are markdown, so the words are escaped."""
    frame = pd.DataFrame(rows)
    if GRAMMAR:
        frame["grammatical"] = ["✓" if parses(s) else "✗" for s in frame.iloc[:, -1]]
    st.table(frame.map(lambda v: ui.plain(v) if isinstance(v, str) else v), hide_index=True, border="horizontal")


# --- homotopy -----------------------------------------------------------------------------------------------------
def homotopy_view(decoding: dict) -> None:
    if not caps.encodes:
        st.info(f"**{model.registry_name}** has no encoder, so it has no code to walk between. Train a "
                "**sentence-vae** on the **Train** page, or see this model's samples under *Samples and decodes*.")
        return
    corpus = corpus_sentences(dataset.name)
    c1, c2 = st.columns(2)
    first = share.widget("a", c1.text_input, "First sentence", key=state.SENT_A, value=corpus[0], max_chars=400)
    second = share.widget("b", c2.text_input, "Second sentence", key=state.SENT_B, value=corpus[1], max_chars=400)
    c1, c2, c3 = st.columns([2, 1, 1], vertical_alignment="bottom")
    steps = share.widget("steps", c1.slider, "Steps", min_value=3, max_value=15, value=7, key="ae.sent.steps")
    mode = share.widget("path", c2.segmented_control, "Path", ["linear", "slerp"], value="linear",
                        key="ae.sent.mode") or "linear"
    c3.button("Two from the corpus", icon=":material/shuffle:", on_click=pick_pair, key="ae.sent.pick",
              width="stretch")
    if checked([first, second]) is None:
        return
    seed = int(st.session_state.get("ae.sent.seed", 0))
    path = homotopy(model, vocab, first, second, steps, seed=seed, mode=mode, **decoding)
    sentence_table({"t": [f"{p['t']:.2f}" for p in path], "decoded": [p["sentence"] for p in path]})
    own = [path[0]["sentence"], path[-1]["sentence"]]
    typed = [" ".join(s.lower().split()) for s in (first, second)]
    for label, text, decoded in zip(("first", "second"), typed, own):
        verdict = "reconstructed exactly" if decoded == text else "decoded differently"
        st.caption(f"The {label} sentence's own code: **{ui.plain(decoded)}** ({verdict}).")
    if GRAMMAR:
        grammatical = np.mean([parses(p["sentence"]) for p in path])
        st.caption(f"{grammatical:.0%} of the steps are sentences of the grammar (checked by its parser).")


# --- samples and decodes --------------------------------------------------------------------------------------------
def samples_view(decoding: dict) -> None:
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    n = share.widget("n", c1.slider, "Samples", min_value=1, max_value=30, value=10, key="ae.sent.n")
    seed = share.widget("seed", c2.number_input, "Seed", min_value=0, max_value=2**31 - 1, value=0,
                        key="ae.sent.seed")
    rows = model.sample(n, torch.Generator().manual_seed(int(seed)), **decoding)
    st.markdown("**From the prior**" if caps.posterior else "**From the language model**")
    sentence_table({"sample": [words_of(r, vocab) for r in rows]})
    if not caps.encodes:
        return
    st.markdown("**Decodes of one sentence**: its posterior mean, then codes drawn from its posterior q(z|x)")
    typed = share.widget("sentence", st.text_input, "Sentence", value=corpus_sentences(dataset.name)[2],
                         key="ae.sent.typed", max_chars=400)
    batch = checked([typed])
    if batch is None:
        return
    k = share.widget("k", st.slider, "Draws from the posterior", min_value=1, max_value=10, value=5, key="ae.sent.k")
    with torch.no_grad():
        mu, logvar = model.posterior_params(batch)
        gen = torch.Generator().manual_seed(int(seed))
        z = torch.cat([mu, mu + (0.5 * logvar).exp() * torch.randn(k, mu.shape[1], generator=gen)])
    decoded = model.generate(z, k + 1, decoding["method"], decoding["width"], decoding["temperature"], gen)
    sentence_table({"code": ["posterior mean"] + [f"draw {i + 1}" for i in range(k)],
                    "decoded": [words_of(r, vocab) for r in decoded]})


# --- does the decoder use z? ---------------------------------------------------------------------------------------
@st.cache_data(max_entries=16, show_spinner="Reading the posterior over the test sentences…")
def posterior_stats(run_key: tuple, _model) -> dict:
    n = min(1000, len(dataset.test_tokens))
    batch = dataset.with_vocab(vocab).probe(n)
    return _model.posterior_stats(batch)


def uses_z_view() -> None:
    if not caps.posterior:
        st.info(f"**{model.registry_name}** has no z: it is the baseline whose NLL shows what the VAE's KL costs.")
        return
    key = (handle.id, handle.job.progress().weights_step if handle.training else -1)
    stats = posterior_stats(key, model)
    kl = np.asarray(stats["kl"])
    active = int((np.asarray(stats["spread"]) ** 2 > 0.01).sum())
    c1, c2, c3 = st.columns(3)
    c1.metric("KL (nats / sentence)", f"{kl.sum():.2f}", help="mean over up to 1,000 test sentences")
    c2.metric("Active units", f"{active} of {len(kl)}", help="Var over sentences of E_q[z_u] > 0.01 (Burda et al.)")
    if handle.record is not None and "nll" in handle.record.metrics:
        c3.metric("Test NLL bound", f"{handle.record.metrics['nll']:.2f}", help="−ELBO, nats per sentence")
    # z1, z2, ... as on the Generate page's KL bars (this chart said 0, 2, 4, ...: a linear axis, counted from 0)
    fig = go.Figure(go.Bar(x=[f"z{i + 1}" for i in range(len(kl))], y=kl,
                           marker_color=np.where(kl < 0.01, "#ced4da", "#4c6ef5")))
    fig.update_layout(height=260, margin=dict(l=0, r=0, t=10, b=0), xaxis=dict(type="category", title=None),
                      yaxis_title="KL (nats)")
    st.plotly_chart(fig, key="ae.sent.kl")
    if kl.sum() < 0.1:
        st.warning("The KL is near 0: the posterior has collapsed onto the prior and the decoder ignores z (try word "
                   "dropout, or free bits).")
    st.markdown("**One sentence, two codes**: decoded from its own code and from a code drawn from the prior. If "
                "the decoder ignored z, both would be the same sentence.")
    typed = share.widget("sentence", st.text_input, "Sentence", value=corpus_sentences(dataset.name)[3],
                         key="ae.sent.zcheck", max_chars=400)
    batch = checked([typed])
    if batch is None:
        return
    with torch.no_grad():
        own = model.encode(batch)
        other = model.prior_latents(1, torch.Generator().manual_seed(1))
    decoded = model.generate(torch.cat([own, other]), 2, "greedy")
    c1, c2 = st.columns(2)
    c1.markdown(f"Its own code\n\n> {words_of(decoded[0], vocab)}")
    c2.markdown(f"A code from the prior\n\n> {words_of(decoded[1], vocab)}")


view = share.widget("view", st.segmented_control, "View", list(VIEWS), key=state.SENT_VIEW, value=VIEWS[0],
                    label_visibility="collapsed")
if handle.training:
    st.caption(f"Run {handle.id} is still training: this is a copy of its latest weights.")
if view == "Homotopy":
    homotopy_view(decoding_controls())
elif view == "Samples and decodes":
    samples_view(decoding_controls())
elif view == "Does it use z?":
    uses_z_view()
else:
    st.info("Pick a view above.")
