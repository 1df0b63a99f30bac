"""DocStore under threads: searches share the store's lock, writers take it alone; no torn or short results."""

from __future__ import annotations

import threading

import numpy as np

from ragcun.store.doc_store import DocStore, Record

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()


def test_parallel_searches_while_writers_add_and_delete() -> None:
    rng = np.random.default_rng(0)
    store = DocStore()
    base = [Record(f"base-{i}", f"{WORDS[i % 10]} {WORDS[(i * 3) % 10]} doc") for i in range(200)]
    store.add(base, rng.standard_normal((200, 16)).astype(np.float32))
    errors: list[BaseException] = []
    short: list[int] = []
    stop = threading.Event()

    def reader(seed: int) -> None:
        local = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                q = local.standard_normal(16).astype(np.float32)
                for mode in ("dense", "hybrid", "lexical"):
                    hits = store.search(q, 10, text=WORDS[int(local.integers(10))], mode=mode)
                    if mode != "lexical" and len(hits) != 10:
                        short.append(len(hits))
                    assert len({h.record.id for h in hits}) == len(hits)
                store.mmr_search(q, 5, 20)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def writer() -> None:
        local = np.random.default_rng(99)
        try:
            for round_ in range(60):
                ids = [f"churn-{round_}-{j}" for j in range(20)]
                store.add([Record(i, f"{WORDS[j % 10]} churn") for j, i in enumerate(ids)],
                          local.standard_normal((20, 16)).astype(np.float32))
                store.delete(ids)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            stop.set()

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(4)] + [threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"
    assert not errors, errors[:3]
    assert not short, f"short result rows: {short[:10]}"
    assert len(store) == 200 and store.lexical.count == 200
