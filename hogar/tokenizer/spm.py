"""SentencePiece-style tokenization as llm_tokenizer_spm_session: characters, then repeatedly merge the adjacent pair
whose joined text is the highest-scoring token (leftmost first on ties), then byte fallback (<0xXX>) for characters
that are not tokens. Spaces are already U+2581 when text gets here."""

from __future__ import annotations

import heapq

from hogar.tokenizer.vocab import Vocab


class SPM:
    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab
        self.t2i = vocab.token_to_id
        self.scores = vocab.scores

    def tokenize(self, text: str, out: list[int]) -> None:
        t2i, scores = self.t2i, self.scores
        syms = list(text)
        n = len(syms)
        nxt = list(range(1, n + 1))
        if n:
            nxt[-1] = -1
        prv = list(range(-1, n - 1))
        heap: list[tuple[float, int, int, int]] = []
        for i in range(n - 1):
            tid = t2i.get(syms[i] + syms[i + 1])
            if tid is not None:
                heap.append((-scores[tid], i, i + 1, 2))
        heapq.heapify(heap)
        lens = [1] * n
        while heap:
            _, left, right, size = heapq.heappop(heap)
            ll, rl = lens[left], lens[right]
            if ll == 0 or rl == 0 or ll + rl != size:
                continue
            syms[left] += syms[right]
            syms[right] = ""
            lens[left], lens[right] = size, 0
            after = nxt[right]
            nxt[left] = after
            if after >= 0:
                prv[after] = left
            before = prv[left]
            if before >= 0:
                tid = t2i.get(syms[before] + syms[left])
                if tid is not None:
                    heapq.heappush(heap, (-scores[tid], before, left, lens[before] + size))
            if after >= 0:
                tid = t2i.get(syms[left] + syms[after])
                if tid is not None:
                    heapq.heappush(heap, (-scores[tid], left, after, size + lens[after]))
        vocab = self.vocab
        for sym in syms:
            if not sym:
                continue
            tid = t2i.get(sym)
            if tid is not None:
                out.append(tid)
            else:
                out.extend(vocab.byte_token(b) for b in sym.encode("utf-8", "surrogatepass"))
