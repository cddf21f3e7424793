"""Both tokenizers: round trip, specials, batches, save/load and corrupt files."""

import pytest

from lm_torch.io import CheckpointError
from lm_torch.tokenizer import CharTokenizer, TokenizerError, load_tokenizer, train_tokenizer


@pytest.mark.parametrize("kind", ["bpe", "char"])
def test_round_trip_and_specials(kind, tiny_corpus, tmp_path):
    tok = train_tokenizer(kind, tiny_corpus.texts(), 320)
    for text in tiny_corpus.texts("val")[:50]:
        ids = tok.encode(text, bos=True, eos=True)
        assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
        assert tok.decode(ids) == text
    ids, lengths = tok.encode_batch(["movie review :", "user : no"], bos=True)
    assert ids.shape == (2, lengths.max()) and (ids[0, lengths[0]:] == tok.pad_id).all()
    tok.save(tmp_path / "tok.json")
    again = load_tokenizer(tmp_path / "tok.json")
    assert again.fingerprint() == tok.fingerprint()
    assert again.encode("the plot was good .") == tok.encode("the plot was good .")


def test_bpe_learns_whole_words(tiny_tokenizer):
    assert len(tiny_tokenizer.encode("movie review : the plot was good .")) <= 12  # 34 characters


def test_decode_stops_at_eos(tiny_tokenizer):
    tok = tiny_tokenizer
    ids = tok.encode("no .") + [tok.eos_id] + tok.encode(" whatever")
    assert tok.decode(ids) == "no ."


def test_errors(tmp_path):
    tok = CharTokenizer.train(["abc"])
    with pytest.raises(TokenizerError, match="not in the tokenizer's alphabet"):
        tok.encode("abz")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_tokenizer(tmp_path / "bad.json")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_tokenizer(tmp_path / "missing.json")
    with pytest.raises(TokenizerError):
        train_tokenizer("wordpiece", ["a"])
