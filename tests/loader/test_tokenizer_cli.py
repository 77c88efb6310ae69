"""``corpusforge tokenizer train text`` trains what a recipe trains, from files or a manifest."""

from __future__ import annotations

from click.testing import CliRunner
from tokenizers import Tokenizer

from corpusforge.cli import main
from corpusforge.tokenize.special import SPECIAL_TOKENS


def test_train_text_bpe_from_folder_has_fixed_special_tokens(tmp_path, shared_data):
    out = tmp_path / "tok.json"
    res = CliRunner().invoke(main, ["tokenizer", "train", "text", str(shared_data / "prose"), "-o", str(out),
                                    "--vocab-size", "600", "--special-token", "<DOC_SEP>"])
    assert res.exit_code == 0, res.output
    tok = Tokenizer.from_file(str(out))
    assert [tok.token_to_id(t) for t in SPECIAL_TOKENS] == list(range(16))
    assert tok.token_to_id("<DOC_SEP>") == 16
    assert tok.get_vocab_size() == 600


def test_train_text_sentencepiece_writes_a_model_that_loads(tmp_path, shared_data):
    from corpusforge.tokenize.encoder import load_encoder

    out = tmp_path / "sp.model"
    res = CliRunner().invoke(main, ["tokenizer", "train", "text", str(shared_data / "prose"), "-o", str(out),
                                    "--type", "sentencepiece_unigram", "--vocab-size", "800"])
    assert res.exit_code == 0, res.output
    enc = load_encoder(out)
    assert enc.vocab_size == 800
    assert all(i >= 16 for i in enc.encode_batch(["the river"])[0])


def test_train_text_rejects_a_json_name_for_sentencepiece(tmp_path, shared_data):
    res = CliRunner().invoke(main, ["tokenizer", "train", "text", str(shared_data / "prose"), "-o",
                                    str(tmp_path / "tok.json"), "--type", "sentencepiece_bpe"])
    assert res.exit_code == 2
    assert "SentencePiece types write a '.model' file" in res.output


def test_train_text_max_samples_limits_each_input(tmp_path, shared_data):
    from corpusforge.recipe import TokenizerConfig
    from corpusforge.tokenize.encoder import train_to_bytes

    lines = (shared_data / "prose" / "tinyshakespeare.txt").read_text(encoding="utf-8").splitlines()
    paragraphs = [" ".join(lines[i:i + 6]) for i in range(0, 120, 6)]
    src = tmp_path / "para.txt"
    src.write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    out = tmp_path / "tok.json"
    res = CliRunner().invoke(main, ["tokenizer", "train", "text", str(src), "-o", str(out), "--vocab-size", "400",
                                    "--text-unit", "paragraph", "--max-samples", "5"])
    assert res.exit_code == 0, res.output
    expect = train_to_bytes(TokenizerConfig(vocab_size=400), iter(paragraphs[:5]))
    assert Tokenizer.from_str(expect.decode()).get_vocab() == Tokenizer.from_file(str(out)).get_vocab()
    everything = train_to_bytes(TokenizerConfig(vocab_size=400), iter(paragraphs))
    assert Tokenizer.from_str(everything.decode()).get_vocab() != Tokenizer.from_file(str(out)).get_vocab()
