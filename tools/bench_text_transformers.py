"""Paragraphs per second of Hugging Face `BertModel` at bert-base shapes (vocabulary 30523, as
BLIP-2's Q-Former text side) on T-token sequences, one paragraph at a time: the reference for
`cargo run --release -p mmif-nn --example bench_text`. Same arguments; threads from --threads."""
import argparse, time
import torch
from transformers import BertConfig, BertModel

p = argparse.ArgumentParser()
p.add_argument("--tokens", type=int, default=149)
p.add_argument("--paragraphs", type=int, default=10)
p.add_argument("--runs", type=int, default=5)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
a = p.parse_args()
torch.set_num_threads(a.threads)
model = BertModel(BertConfig(vocab_size=30523), add_pooling_layer=False).eval().to(a.device)
ids = torch.tensor([[1000 + (i * 7919) % 29000 for i in range(a.tokens)]], device=a.device)
sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
mask = torch.ones_like(ids)
with torch.inference_mode():
    model(input_ids=ids, attention_mask=mask)
    rates = []
    for _ in range(a.runs):
        t = time.perf_counter()
        for _ in range(a.paragraphs):
            model(input_ids=ids, attention_mask=mask).last_hidden_state.cpu()
        sync()
        rates.append(a.paragraphs / (time.perf_counter() - t))
rates.sort()
print(f"transformers {__import__('transformers').__version__} BertModel, bert-base, T={a.tokens}, "
      f"{a.threads} threads, {a.device}: median {rates[len(rates) // 2]:.2f} paragraphs/s "
      f"(range {rates[0]:.2f}-{rates[-1]:.2f}, {a.runs} runs of {a.paragraphs})")
