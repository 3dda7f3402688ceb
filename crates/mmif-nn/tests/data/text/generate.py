"""Reference data for mmif-nn's text-encoder tests (tests/text_encoder.rs) and mmif-cli's
`text-encode` tests: run once with PyTorch + Hugging Face transformers; the tests need no Python.

    MMIF_FIXTURES=../shared/fixtures python3 crates/mmif-nn/tests/data/text/generate.py

Writes, beside this script:
* tokenizer.json, vocab.txt — a BERT WordPiece vocabulary (uncased, 2000 tokens) trained with
  `tokenizers` on a small corpus and saved by `BertTokenizerFast.save_pretrained` (bert-base-uncased's
  own vocabulary cannot be fetched here; the tokenization pipeline is the same). The training is not
  bit-reproducible (ties between equally frequent pairs), so a rerun rewrites every file that depends on
  the vocabulary; the set stays consistent.
* paragraphs.json — the test paragraphs (punctuation, accents, CJK, numbers, URLs, a very long one).
* tokens.json — `BertTokenizerFast` ids of every paragraph, untruncated and with
  `truncation=True, max_length=24`.
* small.json + small_<i>.npy — `BertModel(...).last_hidden_state` (float32, T×64) of a small random
  configuration for a few paragraphs; the weights are the fixtures' deterministic fill
  (prng_reference.py, seed 7, parameter t = its index in the list below), which the Rust tests
  rebuild bit for bit.
* hf_blip2.json + hf_blip2.npy — a small random Hugging Face `Blip2ForImageTextRetrieval` with the
  Q-Former's text input: its Q-Former configuration, the keys and shapes of its text encoder's tensors
  in its own layout (`embeddings.*`, `qformer.layernorm.*`, `qformer.encoder.layer.N.*`), filled as
  above (seed 13, t = index in that list), and `qformer(embeddings(ids), query_length=0)` for paragraph 0.
* base.json + base_rows.npy — the bert-base shapes (12 layers, 768 wide, vocabulary 30523 as
  LAVIS's BLIP-2), same fill (seed 11), T = 149 pseudo-random token ids: rows 0, 1, 74 and 148 of
  the last hidden state (4×768).
"""
import json, os, sys
import numpy as np
import torch
from transformers import BertConfig, BertModel, BertTokenizerFast
from tokenizers import BertWordPieceTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("MMIF_FIXTURES", os.path.join(HERE, "../../../../../../shared/fixtures")))
from prng_reference import fill_value  # noqa: E402

torch.set_num_threads(1)

PARAGRAPHS = [
    "A man in a dark jacket walks along a road at night; the infrared image shows his warm body clearly.",
    "The visible image shows trees, a fence and a house, while the thermal image highlights a person near the fence.",
    "Cars parked on the street, street lamps, and pedestrians crossing -- captured at dusk.",
    "Hello, world! How are you? I'm fine... really?!",
    "Punctuation: (brackets) [square] {curly} <angle> \"quotes\" 'single' `back` ~tilde~ @at #hash $dollar %percent ^caret &amp *star",
    "Dashes - and -- and — em, – en; ellipsis … and bullets • here.",
    "Café, naïve, façade, résumé, Ångström, Zürich, São Paulo, Kraków, Dvořák.",
    "ÉCOLE NORMALE SUPÉRIEURE — ÀÉÎÕÜ àéîõü ñ Ñ ç Ç ø Ø æ Æ ß.",
    "中文的句子：红外图像和可见光图像融合。",
    "日本語の文章です。赤外線画像と可視画像。",
    "한국어 문장입니다. 적외선 영상.",
    "Mixed 中文 and English words, 混合 text with 数字 123.",
    "Numbers: 3.14159, 2,718, -42, +7, 1e-5, 0x1F, 50%, $19.99, 12:30, 2024-05-17.",
    "Version v1.2.3-rc.4 released on 17/05/2024 at 09:15 UTC.",
    "Visit https://example.com/path/to/page?query=1&lang=en#section for details.",
    "Email someone@example.org or see http://www.example.net:8080/index.html.",
    "ftp://files.example.com/pub/data.tar.gz and www.example.co.uk",
    "UPPER CASE WORDS AND lower case words And Mixed Case.",
    "    leading and trailing spaces    ",
    "Tabs\tand\nnewlines\r\nand multiple     spaces.",
    "Emoji 😀 🔥 🚗 and symbols ™ © ® ° ± × ÷ → ← ↑ ↓.",
    "Greek αβγδ ΑΒΓΔ and Cyrillic текст Текст.",
    "Arabic نص عربي and Hebrew טקסט עברי.",
    "Hindi हिन्दी पाठ and Thai ข้อความภาษาไทย.",
    "A long unbreakable word: pneumonoultramicroscopicsilicovolcanoconiosis and antidisestablishmentarianism.",
    "x" * 120,
    "supercalifragilisticexpialidocious" * 4,
    "The infrared image reveals a hot engine; the visible one shows the car's red paint and the road markings.",
    "MRI shows soft tissue detail, CT shows bone; the fused image should keep both.",
    "PET highlights metabolic activity in the brain, overlaid on the MRI's anatomy.",
    "An over-exposed photo of a window and an under-exposed one of the room; fuse them into one well-exposed image.",
    "Near focus: the flower in front is sharp. Far focus: the mountains behind are sharp.",
    "[CLS] literal special tokens [SEP] inside [MASK] text [UNK] [PAD].",
    "Special-looking [not special] tokens [cls] and [Sep].",
    "a",
    "?",
    "1",
    "The the the the the the the the.",
    "Don't, won't, can't, it's, we're, they've, I'd, o'clock, rock'n'roll.",
    "Hyphenated words: state-of-the-art, well-known, long-wave infrared (LWIR), near-infrared (NIR).",
    "Units: 8–14 μm, 0.4–0.7 µm, 640×480 px, 30 fps, 25 °C, 300 K.",
    "Math: a+b=c, x^2 + y^2 = r^2, ∑ᵢ xᵢ, ∫ f(x) dx, √2 ≈ 1.414, π ≈ 3.14.",
    "Quotes “curly double” and ‘curly single’ and «guillemets» and „low“.",
    "Full-width ＡＢＣ１２３ and half-width ｶﾀｶﾅ characters.",
    "Accents combining: e\u0301 a\u0300 o\u0308 n\u0303 (decomposed).",
    "Zero\u200bwidth\u200cjoiners\u200dand\ufeffBOM.",
    "Control chars \u0001\u0002 and \u007f delete.",
    "A snowy scene: the visible camera sees white fog, the thermal camera sees two deer and a hunter behind the trees.",
    "Smoke covers the building in the visible image; firefighters are visible only in the infrared image.",
    "Night-time harbour: ships' lights glare in the visible image, the infrared image shows the hulls and the people on deck.",
    "Road scene with a bus, three cyclists and a dog; headlights cause glare; the thermal image is low-contrast on the asphalt.",
    "This paragraph describes an image pair. " * 3,
    " ".join(f"word{i}" for i in range(40)),
    "Semicolons; colons: commas, periods. Exclamation! Question? Slash/backslash\\ pipe| underscore_ plus+ equals=.",
]
LONG = " ".join(
    "In the infrared image a person walks past a parked car near a brick building, and in the visible image "
    "the street lights reflect on the wet road while trees line the pavement."
    for _ in range(30)
)
PARAGRAPHS.append(LONG)
assert len(PARAGRAPHS) >= 50


def corpus():
    import codecs, contextlib, io
    with contextlib.redirect_stdout(io.StringIO()):
        import this
    yield codecs.decode(this.s, "rot13")
    for p in PARAGRAPHS:
        yield p
    for mod in ("json", "os", "argparse", "collections", "textwrap", "email", "http", "unittest", "typing"):
        m = __import__(mod)
        if m.__doc__:
            yield m.__doc__


def main():
    out = HERE
    trainer_tok = BertWordPieceTokenizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    trainer_tok.train_from_iterator(list(corpus()), vocab_size=2000, min_frequency=1,
                                    special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tmp = os.path.join(out, "_tmp")
    os.makedirs(tmp, exist_ok=True)
    trainer_tok.save_model(tmp)
    tok = BertTokenizerFast(vocab=os.path.join(tmp, "vocab.txt"), do_lower_case=True)
    tok.save_pretrained(tmp)
    os.replace(os.path.join(tmp, "tokenizer.json"), os.path.join(out, "tokenizer.json"))
    os.replace(os.path.join(tmp, "vocab.txt"), os.path.join(out, "vocab.txt"))
    for f in os.listdir(tmp):
        os.remove(os.path.join(tmp, f))
    os.rmdir(tmp)
    tok = BertTokenizerFast(tokenizer_file=os.path.join(out, "tokenizer.json"))
    vocab = len(tok)

    full = [tok(p)["input_ids"] for p in PARAGRAPHS]
    # LAVIS tokenizes with the slow (Python) BertTokenizer: it must agree with the fast one.
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy as SlowBertTokenizer
    slow = SlowBertTokenizer(os.path.join(out, "vocab.txt"))
    for p, ids in zip(PARAGRAPHS, full):
        assert slow(p)["input_ids"] == ids, p
    trunc = [tok(p, truncation=True, max_length=24)["input_ids"] for p in PARAGRAPHS]
    with open(os.path.join(out, "paragraphs.json"), "w", encoding="utf-8") as f:
        json.dump(PARAGRAPHS, f, ensure_ascii=False, indent=0)
    with open(os.path.join(out, "tokens.json"), "w") as f:
        json.dump({"vocab_size": vocab, "full": full, "truncated_24": trunc}, f)

    # Small configuration.
    small = dict(vocab_size=vocab, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=128, max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12,
                 hidden_act="gelu")
    picks = [0, 8, 12, 14, 20, 44]
    model = build(small, seed=7)
    for n, i in enumerate(picks):
        ids = torch.tensor([full[i]])
        with torch.no_grad():
            h = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[0].numpy()
        np.save(os.path.join(out, f"small_{n}.npy"), h.astype(np.float32))
    with open(os.path.join(out, "small.json"), "w") as f:
        json.dump({"config": small, "seed": 7, "paragraphs": picks}, f, indent=1)

    hf_blip2(out, tok, full[0])

    # bert-base shapes, BLIP-2's vocabulary.
    base = dict(vocab_size=30523, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12,
                hidden_act="gelu")
    model = build(base, seed=11)
    rng = np.random.default_rng(5)
    ids = [101] + rng.integers(1000, 30522, size=147).tolist() + [102]
    rows = [0, 1, 74, 148]
    with torch.no_grad():
        h = model(input_ids=torch.tensor([ids])).last_hidden_state[0].numpy()
    np.save(os.path.join(out, "base_rows.npy"), h[rows].astype(np.float32))
    with open(os.path.join(out, "base.json"), "w") as f:
        json.dump({"config": base, "seed": 11, "ids": ids, "rows": rows}, f)


def hf_blip2(out, tok, ids):
    from transformers import Blip2Config, Blip2ForImageTextRetrieval
    q = dict(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=96,
             max_position_embeddings=128, encoder_hidden_size=32, use_qformer_text_input=True,
             cross_attention_frequency=2, layer_norm_eps=1e-12)
    cfg = Blip2Config(vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                                         num_attention_heads=4, image_size=28, patch_size=14),
                      qformer_config=q, num_query_tokens=4, image_text_hidden_size=16)
    model = Blip2ForImageTextRetrieval(cfg).eval()
    sd = model.state_dict()
    keys = [k for k in sd if k.startswith("embeddings.") and not k.endswith("position_ids")
            or k.startswith("qformer.layernorm.") or k.startswith("qformer.encoder.")]
    for t, k in enumerate(keys):
        sd[k].copy_(torch.from_numpy(fill_value(k, tuple(sd[k].shape), 13, t)))
    x = torch.tensor([ids])
    with torch.no_grad():
        h = model.qformer(query_embeds=model.embeddings(input_ids=x), query_length=0,
                          attention_mask=torch.ones_like(x)).last_hidden_state[0].numpy()
    np.save(os.path.join(out, "hf_blip2.npy"), h.astype(np.float32))
    with open(os.path.join(out, "hf_blip2.json"), "w") as f:
        json.dump({"qformer_config": q, "seed": 13, "paragraph": 0,
                   "keys": [[k, list(sd[k].shape)] for k in keys]}, f)


def parameters(cfg):
    """The encoder's parameters in mmif's order (BertConfig::parameters), with their shapes."""
    h, i = cfg["hidden_size"], cfg["intermediate_size"]
    p = [("embeddings.word_embeddings.weight", (cfg["vocab_size"], h)),
         ("embeddings.position_embeddings.weight", (cfg["max_position_embeddings"], h)),
         ("embeddings.token_type_embeddings.weight", (cfg["type_vocab_size"], h)),
         ("embeddings.LayerNorm.weight", (h,)), ("embeddings.LayerNorm.bias", (h,))]
    for l in range(cfg["num_hidden_layers"]):
        q = f"encoder.layer.{l}."
        for name, dout, din in (("attention.self.query", h, h), ("attention.self.key", h, h),
                                ("attention.self.value", h, h), ("attention.output.dense", h, h)):
            p += [(q + name + ".weight", (dout, din)), (q + name + ".bias", (dout,))]
        p += [(q + "attention.output.LayerNorm.weight", (h,)), (q + "attention.output.LayerNorm.bias", (h,))]
        p += [(q + "intermediate.dense.weight", (i, h)), (q + "intermediate.dense.bias", (i,))]
        p += [(q + "output.dense.weight", (h, i)), (q + "output.dense.bias", (h,))]
        p += [(q + "output.LayerNorm.weight", (h,)), (q + "output.LayerNorm.bias", (h,))]
    return p


def build(cfg, seed):
    model = BertModel(BertConfig(**cfg), add_pooling_layer=False).eval()
    sd = model.state_dict()
    params = parameters(cfg)
    assert sorted(k for k in sd if not k.endswith("position_ids")) == sorted(k for k, _ in params), sd.keys()
    for t, (k, shape) in enumerate(params):
        assert tuple(sd[k].shape) == shape, k
        sd[k].copy_(torch.from_numpy(fill_value(k, shape, seed, t)))
    return model


if __name__ == "__main__":
    main()
