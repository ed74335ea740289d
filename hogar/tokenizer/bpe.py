"""Byte-level BPE as llm_tokenizer_bpe_session: pre-tokenize, then merge each word by rank (lowest rank first, leftmost
first on ties, through a priority queue), then map the symbols to ids with llama.cpp's per-byte fallback."""

from __future__ import annotations

import heapq

from hogar.tokenizer.pretokenize import PreTokenizer
from hogar.tokenizer.vocab import Vocab

_CACHE_MAX = 1 << 16


class BPE:
    def __init__(self, vocab: Vocab) -> None:
        assert vocab.pre is not None
        self.vocab = vocab
        self.t2i = vocab.token_to_id
        self.pre = PreTokenizer(vocab.pre.kind)
        self.gemma4 = vocab.pre.kind == "GEMMA4"
        self.ranks: dict[tuple[str, str], int] = {}
        for i, merge in enumerate(vocab.merges):
            pos = merge.find(" ", 1)
            pair = (merge[:pos], merge[pos + 1 :]) if pos >= 0 else ("", "")
            self.ranks.setdefault(pair, i)
        self._cache: dict[str, list[int]] = {}

    def tokenize(self, text: str, out: list[int]) -> None:
        if self.vocab.escape_whitespaces:
            text = text.replace(" ", "\u2581")
        cache = self._cache
        for word in self.pre.split(text):
            ids = cache.get(word)
            if ids is None:
                ids = self._word(word)
                if len(cache) >= _CACHE_MAX:
                    cache.clear()
                cache[word] = ids
            out.extend(ids)

    def _symbols(self, word: str) -> list[str]:
        t2i = self.t2i
        if self.vocab.ignore_merges and word in t2i:
            return [word]
        if self.gemma4 and not word.strip("\n") and word in t2i:
            return [word]
        syms = list(word)
        n = len(syms)
        if n < 2:
            return syms
        ranks = self.ranks
        nxt = list(range(1, n + 1))
        nxt[-1] = -1
        prv = list(range(-1, n - 1))
        heap = []
        for i in range(n - 1):
            r = ranks.get((syms[i], syms[i + 1]))
            if r is not None:
                heap.append((r, i, i + 1, syms[i] + syms[i + 1]))
        heapq.heapify(heap)
        while heap:
            _, left, right, merged = heapq.heappop(heap)
            a, b = syms[left], syms[right]
            if not a or not b or a + b != merged:
                continue
            syms[left], syms[right] = merged, ""
            after = nxt[right]
            nxt[left] = after
            if after >= 0:
                prv[after] = left
            before = prv[left]
            if before >= 0:
                r = ranks.get((syms[before], merged))
                if r is not None:
                    heapq.heappush(heap, (r, before, left, syms[before] + merged))
            if after >= 0:
                r = ranks.get((merged, syms[after]))
                if r is not None:
                    heapq.heappush(heap, (r, left, after, merged + syms[after]))
        return [s for s in syms if s]

    def _word(self, word: str) -> list[int]:
        t2i, out = self.t2i, []
        for sym in self._symbols(word):
            tid = t2i.get(sym)
            if tid is not None:
                out.append(tid)
                continue
            for b in sym.encode("utf-8", "surrogatepass"):
                key = (chr(b) if b < 0x80 else None) if self.pre.byte_encode else f"<0x{b:02X}>"
                tid = t2i.get(key) if key is not None else None
                if tid is not None:
                    out.append(tid)
        return out
