/* K-quant weights (Q2_K .. Q6_K) repacked 16 rows at a time, for AVX-512 matmuls with one output row per 32-bit
 * lane (the K-quant counterpart of packed16.c; same idea: one 64-byte vector holds 4 consecutive values of each of
 * the 16 rows, so one vpdpbusd against 4 broadcast activation bytes gives a 4-product sum for every row; AVX2: half
 * of that vector, 8 rows, and dp4 for vpdpbusd).
 *
 * llama.cpp's arithmetic on x86, reproduced bit for bit (activations are Q8_K: one f32 scale per 256 values):
 *   Q4_K (repacked by llama.cpp as q4_K_8x8): per super-block, dot_j = the 32-value integer dot of sub-block j,
 *     isum = sum_j sc_j dot_j, imin = sum_j mn_j bsum_j; acc = fma((float)isum, d_w d_x, acc),
 *     accm = fma((float)imin, dmin_w d_x, accm); out = acc - accm.  Activation rows in whole groups of 4 go through
 *     its gemm instead: the same per pair of sub-blocks (4 FMAs per super-block), and their Q8_K scale's sign
 *     follows "some x reaches +max|x|" (quant_row_q8k_exact's pos_wins).
 *   Q6_K (not repacked; ggml_vec_dot_q6_K_q8_K): 8 integer lanes per super-block, lane l = sum over the 8 chunks c
 *     of 32 values of sc[2c + (l >= 4)] x (4-product sum of values 4l..4l+3 of chunk c), minus
 *     32 (sc[2l] bsum16[2l] + sc[2l+1] bsum16[2l+1]); acc[l] = fma(d_x d_w, (float)lane, acc[l]); hsum_float_8.
 *     With 8 or more activation rows llama.cpp's tiled VNNI kernel takes over: s1 = the sum of the lanes,
 *     tacc = fma((float)s1 * d_w, d_x, tacc).
 *   Q2_K (repacked by llama.cpp as q2_K_8x8): as Q4_K per group of 16 values: per half super-block (Q8_K rows in
 *     whole groups of 4: the gemm) or per super-block (the gemv), isum = sum_g sc_g dot_g, imin = sum_g mn_g bsum_g,
 *     acc = fma((float)isum, d_w d_x, acc), accm = fma((float)imin, dmin_w d_x, accm); out = acc - accm.
 *   Q3_K, Q5_K (not repacked): ggml_vec_dot_q3_K/q5_K_q8_K, 8 integer lanes as for Q6_K (Q3_K: the weights q - 4
 *     times the scales sc - 32 of the 16-value groups; Q5_K: the scales of the 32-value sub-blocks, and summs =
 *     fma(-d_x dmin_w, (float)sum_j mn_j bsum32_j, summs) added after hsum_float_8); 8 or more rows: the tiled
 *     kernel, s1 = sum_g sc_g dot_g (and Q5_K's s2 = sum_j mn_j bsum32_j), r = (float)s1 * d_w,
 *     r = fma(-dmin_w, (float)s2, r), tacc = fma(r, d_x, tacc).
 * Chunk of one (16-row group, super-block):
 *   Q4_K (2368 bytes, 16 x 144 + 64): d[16], dmin[16] f16 | sc[8][16], mn[8][16] bytes (6-bit values unpacked) |
 *     32 x 64 bytes: vector 8m+s, byte 4r+e: low nibble value 4s+e of sub-block 2m, high nibble the same of 2m+1.
 *   Q6_K (3392 bytes, 16 x 210 + 32): d[16] f16 | sc[16][16] int8 | 32 bytes unused | 32 x 64 bytes of low
 *     nibbles as for Q4_K (chunk 2m low, 2m+1 high) | 16 x 64 bytes of high bits: vector 8n+s, byte 4r+e holds
 *     bits 4-5 of value 4s+e of chunks 4n+k at bits 2k..2k+1.
 *   Q2_K (1344 bytes, 16 x 84): d[16], dmin[16] f16 | scale bytes [16][16] (sc | mn << 4) | 16 x 64 bytes of codes:
 *     vector 8n+s, byte 4r+e holds value 4s+e of chunks 4n+k at bits 2k..2k+1 (= the GGUF byte qs[32n + 4s + e]).
 *   Q3_K (1824 bytes, 16 x 114): d[16] f16 | sc - 32 [16][16] int8 | 16 x 64 bytes of low bits as for Q2_K |
 *     8 x 64 bytes of high bits: vector s, byte 4r+e holds bit 2 of value 4s+e of chunk c at bit c (= hmask[4s+e]).
 *   Q5_K (2880 bytes, 16 x 180): d[16], dmin[16] f16 | sc[8][16], mn[8][16] | 32 x 64 bytes of low nibbles as for
 *     Q4_K | 8 x 64 bytes of fifth bits: vector s, byte 4r+e holds bit 4 of value 4s+e of chunk c at bit c.
 */
#include "quant_common.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Q6K_Q: where a Q6_K chunk's values start, on a cache line (so is every chunk: 3392 = 53 x 64); a line-split
 * vector load on every step cost the decode kernel about half its speed out of L2 */
enum { Q6K_Q = 320 };
/* The decode kernels prefetch the chunk PF_CHUNKS ahead, a line per step: out of L2, the hardware prefetchers alone
 * left the Q6_K kernel at about half its speed (the chunks of a group, then the next group, lie back to back). */
enum { PF_CHUNKS = 2 };
enum { Q4K_CHUNK = 2368, Q6K_CHUNK = 3392, Q2K_CHUNK = 1344, Q3K_CHUNK = 1824, Q5K_CHUNK = 2880 };

static int64_t pk_chunk(int t) {
    switch (t) {
    case T_Q4_K: return Q4K_CHUNK;
    case T_Q6_K: return Q6K_CHUNK;
    case T_Q2_K: return Q2K_CHUNK;
    case T_Q3_K: return Q3K_CHUNK;
    case T_Q5_K: return Q5K_CHUNK;
    default: return 0;
    }
}

int pk_supported(int t) {
#ifdef HQ_SIMD
    return t == T_Q4_K || t == T_Q6_K || t == T_Q2_K || t == T_Q3_K || t == T_Q5_K;
#else
    (void)t;
    return 0;
#endif
}

int64_t pk_packed_size(int t, int64_t n_out, int64_t n_in) {
    const int64_t units = n_out / 16 * (n_in / 256);
    return units * pk_chunk(t);
}

/* the 256 values (unsigned) of one GGUF super-block, and its Q4_K scales/mins */
static void q4k_values(const uint8_t *r, uint8_t *u, uint8_t *sc, uint8_t *mn) {
    const uint8_t *s = r + 4, *qs = r + 16;
    for (int j = 0; j < 8; j++) {
        if (j < 4) { sc[j] = s[j] & 63; mn[j] = s[j + 4] & 63; }
        else { sc[j] = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4); mn[j] = (s[j + 4] >> 4) | ((s[j] >> 6) << 4); }
    }
    for (int m = 0; m < 4; m++)
        for (int l = 0; l < 32; l++) {
            u[64 * m + l] = qs[32 * m + l] & 0xF;
            u[64 * m + 32 + l] = qs[32 * m + l] >> 4;
        }
}

static void q6k_values(const uint8_t *r, uint8_t *u) {
    for (int n = 0; n < 2; n++) {
        const uint8_t *l8 = r + 64 * n, *h8 = r + 128 + 32 * n;
        uint8_t *o = u + 128 * n;
        for (int l = 0; l < 32; l++) {
            o[l] = (l8[l] & 0xF) | ((h8[l] & 3) << 4);
            o[l + 32] = (l8[l + 32] & 0xF) | (((h8[l] >> 2) & 3) << 4);
            o[l + 64] = (l8[l] >> 4) | (((h8[l] >> 4) & 3) << 4);
            o[l + 96] = (l8[l + 32] >> 4) | (((h8[l] >> 6) & 3) << 4);
        }
    }
}

/* row r of one GGUF super-block of Q2_K / Q3_K / Q5_K into its chunk c: the code bytes move as 4-byte words */
static void pack_k235(int t, const uint8_t *blk, int r, uint8_t *c) {
    const uint8_t *q, *h = NULL;
    uint8_t *qo, *ho = NULL;
    int nq;
    if (t == T_Q2_K) {
        memcpy(c + 2 * r, blk + 80, 2);
        memcpy(c + 32 + 2 * r, blk + 82, 2);
        for (int g = 0; g < 16; g++) c[64 + 16 * g + r] = blk[g];
        q = blk + 16; nq = 64; qo = c + 320;
    } else if (t == T_Q3_K) {
        memcpy(c + 2 * r, blk + 108, 2);
        const uint8_t *s = blk + 96;
        for (int g = 0; g < 16; g++) {
            const int lo = g < 8 ? s[g] & 15 : s[g - 8] >> 4, hi = (s[8 + g % 4] >> (2 * (g / 4))) & 3;
            c[32 + 16 * g + r] = (uint8_t)(int8_t)((lo | (hi << 4)) - 32);
        }
        q = blk + 32; nq = 64; qo = c + 288; h = blk; ho = c + 1312;
    } else {
        memcpy(c + 2 * r, blk, 2);
        memcpy(c + 32 + 2 * r, blk + 2, 2);
        uint8_t u[256], sc[8], mn[8];
        q4k_values(blk, u, sc, mn); /* the same 12-byte scale / min encoding */
        for (int j = 0; j < 8; j++) { c[64 + 16 * j + r] = sc[j]; c[192 + 16 * j + r] = mn[j]; }
        q = blk + 48; nq = 128; qo = c + 320; h = blk + 16; ho = c + 2368;
    }
    for (int k = 0; k < nq / 4; k++) memcpy(qo + 64 * k + 4 * r, q + 4 * k, 4);
    if (h)
        for (int k = 0; k < 8; k++) memcpy(ho + 64 * k + 4 * r, h + 4 * k, 4);
}

/* GGUF rows -> packed (pk_packed_size bytes). Returns 0 on success. */
int pk_pack(int t, const uint8_t *W, int64_t n_out, int64_t n_in, uint8_t *P, int nthreads) {
    if (!pk_chunk(t) || n_out % 16 || n_in % 256) return 1;
    qinfo qi;
    type_info(t, &qi);
    const int64_t nsb = n_in / 256, bsize = qi.size, row_bytes = nsb * bsize, ng = n_out / 16;
    const int64_t chunk = pk_chunk(t);
    if (nthreads < 1) nthreads = 1;
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t g = 0; g < ng; g++) {
        uint8_t u[256], sc[8], mn[8];
        for (int64_t i = 0; i < nsb; i++) {
            uint8_t *c = P + (g * nsb + i) * chunk;
            memset(c, 0, (size_t)chunk);
            for (int r = 0; r < 16; r++) {
                const uint8_t *blk = W + (g * 16 + r) * row_bytes + i * bsize;
                if (t == T_Q2_K || t == T_Q3_K || t == T_Q5_K) {
                    pack_k235(t, blk, r, c);
                } else if (t == T_Q4_K) {
                    memcpy(c + 2 * r, blk, 2);
                    memcpy(c + 32 + 2 * r, blk + 2, 2);
                    q4k_values(blk, u, sc, mn);
                    for (int j = 0; j < 8; j++) { c[64 + 16 * j + r] = sc[j]; c[192 + 16 * j + r] = mn[j]; }
                    uint8_t *q = c + 320;
                    for (int m = 0; m < 4; m++)
                        for (int s = 0; s < 8; s++)
                            for (int e = 0; e < 4; e++)
                                q[(8 * m + s) * 64 + 4 * r + e] =
                                    (uint8_t)(u[64 * m + 4 * s + e] | (u[64 * m + 32 + 4 * s + e] << 4));
                } else {
                    memcpy(c + 2 * r, blk + 208, 2);
                    for (int j = 0; j < 16; j++) c[32 + 16 * j + r] = blk[192 + j];
                    q6k_values(blk, u);
                    uint8_t *q = c + Q6K_Q, *h = c + Q6K_Q + 2048;
                    for (int m = 0; m < 4; m++)
                        for (int s = 0; s < 8; s++)
                            for (int e = 0; e < 4; e++)
                                q[(8 * m + s) * 64 + 4 * r + e] = (uint8_t)((u[64 * m + 4 * s + e] & 0xF) |
                                                                            ((u[64 * m + 32 + 4 * s + e] & 0xF) << 4));
                    for (int n = 0; n < 2; n++)
                        for (int s = 0; s < 8; s++)
                            for (int e = 0; e < 4; e++) {
                                uint8_t b = 0;
                                for (int k = 0; k < 4; k++) b |= (uint8_t)(((u[32 * (4 * n + k) + 4 * s + e] >> 4) & 3) << (2 * k));
                                h[(8 * n + s) * 64 + 4 * r + e] = b;
                            }
                }
            }
        }
    }
    return 0;
}

#ifdef HQ_SIMD

typedef struct {
    const int8_t *a;     /* Q8_K values, stride n_in */
    const float *dx;     /* per super-block scale, stride nsb */
    const int32_t *bs32; /* per 32 values sums, stride 8 nsb */
    const int16_t *bs16; /* per 16 values sums, stride 16 nsb */
    int64_t n_in, nsb;
    const int32_t *c4;   /* Q3_K: -4 x the 4-value sums, stride n_in / 4 */
} kacts;

/* activation row b to Q8_K (and, where A has them, Q3_K's -4 x 4-sums) */
static void quant_k_row(const float *X, int64_t n_in, int64_t b, int pos_wins, const kacts *A) {
    int8_t *q = (int8_t *)A->a + b * n_in;
    quant_row_q8k_exact(X + b * n_in, n_in, pos_wins, q, (float *)A->dx + b * A->nsb, (int32_t *)A->bs32 + b * A->nsb * 8,
                        (int16_t *)A->bs16 + b * A->nsb * 16);
    if (A->c4) {
        int32_t *c = (int32_t *)A->c4 + b * (n_in / 4);
        for (int64_t k = 0; k < n_in / 4; k++) c[k] = -4 * ((int32_t)q[4 * k] + q[4 * k + 1] + q[4 * k + 2] + q[4 * k + 3]);
    }
}

#ifdef HQ_AVX512

static inline __m512i bcast4(const int8_t *a) { int32_t v; memcpy(&v, a, 4); return _mm512_set1_epi32(v); }
static inline __m512i bytes16(const uint8_t *p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)); }
static inline __m512i sbytes16(const uint8_t *p) { return _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)); }

/* Q4_K: 16 rows x C activation rows from b; gemm: llama.cpp's 4-row gemm arithmetic (per pair of sub-blocks) */
static inline __attribute__((always_inline)) void q4k_tile(const int C, const int gemm, const uint8_t *ch0, const kacts *A,
                                                          int64_t b, float *out, int64_t ldo) {
    __m512 acc[4], accm[4];
    for (int c = 0; c < C; c++) { acc[c] = _mm512_setzero_ps(); accm[c] = _mm512_setzero_ps(); }
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (int64_t i = 0; i < A->nsb; i++) {
        const uint8_t *ch = ch0 + i * Q4K_CHUNK, *q = ch + 320;
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)ch));
        const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(ch + 32)));
        __m512 dd[4], dm[4];
        __m512i isum[4], imin[4];
        for (int c = 0; c < C; c++) {
            const __m512 x = _mm512_set1_ps(A->dx[(b + c) * A->nsb + i]);
            dd[c] = _mm512_mul_ps(d, x);
            dm[c] = _mm512_mul_ps(dmin, x);
            isum[c] = imin[c] = _mm512_setzero_si512();
        }
        for (int m = 0; m < 4; m++) {
            __m512i dlo[4], dhi[4];
            for (int c = 0; c < C; c++) dlo[c] = dhi[c] = _mm512_setzero_si512();
            for (int s = 0; s < 8; s++) {
                if (C == 1 && !gemm) { /* decoding: the chunk PF_CHUNKS ahead into L2, a line a step (37 lines) */
                    const char *pf = (const char *)ch + PF_CHUNKS * Q4K_CHUNK;
                    _mm_prefetch(pf + 64 * (8 * m + s), _MM_HINT_T1);
                    if (m == 3 && s < 5) _mm_prefetch(pf + 64 * (32 + s), _MM_HINT_T1);
                }
                const __m512i v = _mm512_loadu_si512(q + (8 * m + s) * 64);
                const __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
                for (int c = 0; c < C; c++) {
                    const int8_t *a = A->a + (b + c) * A->n_in + 256 * i + 64 * m + 4 * s;
                    dlo[c] = _mm512_dpbusd_epi32(dlo[c], lo, bcast4(a));
                    dhi[c] = _mm512_dpbusd_epi32(dhi[c], hi, bcast4(a + 32));
                }
            }
            const __m512i sl = bytes16(ch + 64 + 32 * m), sh = bytes16(ch + 64 + 32 * m + 16);
            const __m512i ml = bytes16(ch + 192 + 32 * m), mh = bytes16(ch + 192 + 32 * m + 16);
            for (int c = 0; c < C; c++) {
                const int32_t *bs = A->bs32 + (b + c) * 8 * A->nsb + 8 * i + 2 * m;
                const __m512i is = _mm512_add_epi32(_mm512_mullo_epi32(sl, dlo[c]), _mm512_mullo_epi32(sh, dhi[c]));
                const __m512i im = _mm512_add_epi32(_mm512_mullo_epi32(ml, _mm512_set1_epi32(bs[0])),
                                                    _mm512_mullo_epi32(mh, _mm512_set1_epi32(bs[1])));
                if (gemm) {
                    acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), dd[c], acc[c]);
                    accm[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(im), dm[c], accm[c]);
                } else {
                    isum[c] = _mm512_add_epi32(isum[c], is);
                    imin[c] = _mm512_add_epi32(imin[c], im);
                }
            }
        }
        if (!gemm)
            for (int c = 0; c < C; c++) {
                acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[c]), dd[c], acc[c]);
                accm[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(imin[c]), dm[c], accm[c]);
            }
    }
    for (int c = 0; c < C; c++) _mm512_storeu_ps(out + (b + c) * ldo, _mm512_sub_ps(acc[c], accm[c]));
}

/* Q6_K value vector of chunk c8 (32 values), step s: low nibbles | (2 high bits << 4), the OR by ternary logic */
static inline __m512i q6k_step(const uint8_t *ch, int c8, int s) {
    const __m512i v = _mm512_loadu_si512(ch + Q6K_Q + (8 * (c8 >> 1) + s) * 64);
    const __m512i lo = c8 & 1 ? _mm512_srli_epi16(v, 4) : v;
    const __m512i h = _mm512_loadu_si512(ch + Q6K_Q + 2048 + (8 * (c8 >> 2) + s) * 64);
    const int k = c8 & 3; /* bits 2k..2k+1 of h to bits 4..5 */
    const __m512i hs = k == 3 ? _mm512_srli_epi16(h, 2) : k == 2 ? h : _mm512_slli_epi16(h, 4 - 2 * k);
    const __m512i hb = _mm512_and_si512(hs, _mm512_set1_epi8(0x30));
    return _mm512_ternarylogic_epi32(lo, _mm512_set1_epi8(0x0F), hb, 0xEA); /* (lo & 0x0F) | hb */
}

/* a row's int8 scale (an int32 lane) in both 16-bit halves of its lane, for vpdpwssd */
static inline __m512i scale_pairs(const uint8_t *p) {
    const __m512i s = sbytes16(p);
    return _mm512_or_si512(_mm512_slli_epi32(s, 16), _mm512_and_si512(s, _mm512_set1_epi32(0xFFFF)));
}

/* Q6_K: the 8 integer lanes of super-block i for 16 rows x C activation rows. Per step, vpmaddubsw gives each row
 * two 16-bit sums of 2 products (at most 2 x 63 x 127: no saturation) and vpdpwssd adds both times the scale: the
 * exact integer lane llama.cpp accumulates, whatever the order. */
static inline __attribute__((always_inline)) void q6k_lanes(const int C, const uint8_t *ch, const kacts *A, int64_t b,
                                                           int64_t i, __m512i L[][8]) {
    for (int c = 0; c < C; c++)
        for (int s = 0; s < 8; s++) L[c][s] = _mm512_setzero_si512();
    for (int c8 = 0; c8 < 8; c8++) {
        const __m512i s_lo = scale_pairs(ch + 32 + 16 * (2 * c8)), s_hi = scale_pairs(ch + 32 + 16 * (2 * c8 + 1));
        for (int s = 0; s < 8; s++) {
            _mm_prefetch((const char *)ch + PF_CHUNKS * Q6K_CHUNK + 64 * (8 * c8 + s), _MM_HINT_T0);
            const __m512i u = q6k_step(ch, c8, s);
            for (int c = 0; c < C; c++) {
                const int8_t *a = A->a + (b + c) * A->n_in + 256 * i + 32 * c8 + 4 * s;
                const __m512i p = _mm512_maddubs_epi16(u, bcast4(a));
                L[c][s] = _mm512_dpwssd_epi32(L[c][s], p, s < 4 ? s_lo : s_hi);
            }
        }
    }
    for (int s = 0; s < 8; s++) {
        const __m512i s0 = sbytes16(ch + 32 + 16 * (2 * s)), s1 = sbytes16(ch + 32 + 16 * (2 * s + 1));
        for (int c = 0; c < C; c++) {
            const int16_t *bs = A->bs16 + (b + c) * 16 * A->nsb + 16 * i + 2 * s;
            const __m512i corr = _mm512_add_epi32(_mm512_mullo_epi32(s0, _mm512_set1_epi32(bs[0])),
                                                  _mm512_mullo_epi32(s1, _mm512_set1_epi32(bs[1])));
            L[c][s] = _mm512_sub_epi32(L[c][s], _mm512_slli_epi32(corr, 5));
        }
    }
}

/* q6k_lanes for one activation row, the loops turned so that each high-bits vector is loaded and split once for
 * its 4 chunks (and each low-nibble vector once for its 2) */
static inline __attribute__((always_inline)) void q6k_lanes1(const uint8_t *ch, const kacts *A, int64_t b, int64_t i,
                                                            __m512i L[8]) {
    for (int s = 0; s < 8; s++) L[s] = _mm512_setzero_si512();
    const __m512i m0f = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    const int8_t *a0 = A->a + b * A->n_in + 256 * i;
    for (int n = 0; n < 2; n++) {
        __m512i sc[4][2];
        for (int k = 0; k < 4; k++) {
            sc[k][0] = scale_pairs(ch + 32 + 16 * (2 * (4 * n + k)));
            sc[k][1] = scale_pairs(ch + 32 + 16 * (2 * (4 * n + k) + 1));
        }
        for (int s = 0; s < 8; s++) {
            for (int l = 0; l < 4; l++)
                _mm_prefetch((const char *)ch + PF_CHUNKS * Q6K_CHUNK + 64 * (32 * n + 4 * s + l), _MM_HINT_T1);
            const __m512i h = _mm512_loadu_si512(ch + Q6K_Q + 2048 + (8 * n + s) * 64);
            const __m512i lo0 = _mm512_loadu_si512(ch + Q6K_Q + (8 * (2 * n) + s) * 64);
            const __m512i lo1 = _mm512_loadu_si512(ch + Q6K_Q + (8 * (2 * n + 1) + s) * 64);
            __m512i u[4];
            u[0] = _mm512_ternarylogic_epi32(lo0, m0f, _mm512_and_si512(_mm512_slli_epi16(h, 4), m30), 0xEA);
            u[1] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(lo0, 4), m0f,
                                             _mm512_and_si512(_mm512_slli_epi16(h, 2), m30), 0xEA);
            u[2] = _mm512_ternarylogic_epi32(lo1, m0f, _mm512_and_si512(h, m30), 0xEA);
            u[3] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(lo1, 4), m0f,
                                             _mm512_and_si512(_mm512_srli_epi16(h, 2), m30), 0xEA);
            for (int k = 0; k < 4; k++) {
                const __m512i p = _mm512_maddubs_epi16(u[k], bcast4(a0 + 32 * (4 * n + k) + 4 * s));
                L[s] = _mm512_dpwssd_epi32(L[s], p, sc[k][s >= 4]);
            }
        }
    }
    for (int s = 0; s < 8; s++) {
        const __m512i s0 = sbytes16(ch + 32 + 16 * (2 * s)), s1 = sbytes16(ch + 32 + 16 * (2 * s + 1));
        const int16_t *bs = A->bs16 + b * 16 * A->nsb + 16 * i + 2 * s;
        const __m512i corr = _mm512_add_epi32(_mm512_mullo_epi32(s0, _mm512_set1_epi32(bs[0])),
                                              _mm512_mullo_epi32(s1, _mm512_set1_epi32(bs[1])));
        L[s] = _mm512_sub_epi32(L[s], _mm512_slli_epi32(corr, 5));
    }
}

static void q6k_vec(const uint8_t *ch0, const kacts *A, int64_t b, float *out) {
    __m512 acc[8];
    __m512i L[1][8];
    for (int s = 0; s < 8; s++) acc[s] = _mm512_setzero_ps();
    for (int64_t i = 0; i < A->nsb; i++) {
        const uint8_t *ch = ch0 + i * Q6K_CHUNK;
        q6k_lanes1(ch, A, b, i, L[0]);
        const __m512 d = _mm512_mul_ps(_mm512_set1_ps(A->dx[b * A->nsb + i]),
                                       _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)ch)));
        for (int s = 0; s < 8; s++) acc[s] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(L[0][s]), acc[s]);
    }
    _mm512_storeu_ps(out, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(acc[4], acc[0]), _mm512_add_ps(acc[6], acc[2])),
                                        _mm512_add_ps(_mm512_add_ps(acc[5], acc[1]), _mm512_add_ps(acc[7], acc[3]))));
}

/* the tiled kernel needs only s1, the sum of the 8 lanes: an integer, so one accumulator per activation row gets
 * it exactly, whatever the order, leaving registers for 4 activation rows per pass over the weights */
static inline __attribute__((always_inline)) void q6k_tiled_sum(const int C, const uint8_t *ch0, const kacts *A,
                                                               int64_t b, float *out, int64_t ldo) {
    __m512 tacc[4];
    for (int c = 0; c < C; c++) tacc[c] = _mm512_setzero_ps();
    for (int64_t i = 0; i < A->nsb; i++) {
        const uint8_t *ch = ch0 + i * Q6K_CHUNK;
        __m512i s1[4];
        for (int c = 0; c < C; c++) s1[c] = _mm512_setzero_si512();
        for (int c8 = 0; c8 < 8; c8++) {
            const __m512i s_lo = scale_pairs(ch + 32 + 16 * (2 * c8)), s_hi = scale_pairs(ch + 32 + 16 * (2 * c8 + 1));
            for (int s = 0; s < 8; s++) {
                const __m512i u = q6k_step(ch, c8, s);
                for (int c = 0; c < C; c++) {
                    const int8_t *a = A->a + (b + c) * A->n_in + 256 * i + 32 * c8 + 4 * s;
                    s1[c] = _mm512_dpwssd_epi32(s1[c], _mm512_maddubs_epi16(u, bcast4(a)), s < 4 ? s_lo : s_hi);
                }
            }
        }
        __m512i corr[4]; /* sum over the 16-value groups of sc_g x bsum16_g (|bsum16| <= 2048: one 16-bit half) */
        for (int c = 0; c < C; c++) corr[c] = _mm512_setzero_si512();
        for (int g = 0; g < 16; g++) {
            const __m512i sg = scale_pairs(ch + 32 + 16 * g);
            for (int c = 0; c < C; c++) {
                const int16_t bs = A->bs16[(b + c) * 16 * A->nsb + 16 * i + g];
                corr[c] = _mm512_dpwssd_epi32(corr[c], sg, _mm512_set1_epi32((int32_t)(uint16_t)bs));
            }
        }
        for (int c = 0; c < C; c++) s1[c] = _mm512_sub_epi32(s1[c], _mm512_slli_epi32(corr[c], 5));
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)ch));
        for (int c = 0; c < C; c++)
            tacc[c] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(s1[c]), dw),
                                      _mm512_set1_ps(A->dx[(b + c) * A->nsb + i]), tacc[c]);
    }
    for (int c = 0; c < C; c++) _mm512_storeu_ps(out + (b + c) * ldo, tacc[c]);
}

static inline __attribute__((always_inline)) void q6k_tiled(const int C, const uint8_t *ch0, const kacts *A, int64_t b,
                                                           float *out, int64_t ldo) {
    __m512 tacc[2];
    __m512i L[2][8];
    for (int c = 0; c < C; c++) tacc[c] = _mm512_setzero_ps();
    for (int64_t i = 0; i < A->nsb; i++) {
        const uint8_t *ch = ch0 + i * Q6K_CHUNK;
        q6k_lanes(C, ch, A, b, i, L);
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)ch));
        for (int c = 0; c < C; c++) {
            __m512i s1 = L[c][0];
            for (int s = 1; s < 8; s++) s1 = _mm512_add_epi32(s1, L[c][s]);
            tacc[c] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(s1), dw),
                                      _mm512_set1_ps(A->dx[(b + c) * A->nsb + i]), tacc[c]);
        }
    }
    for (int c = 0; c < C; c++) _mm512_storeu_ps(out + (b + c) * ldo, tacc[c]);
}

/* ---- Q2_K, Q3_K, Q5_K ---- */

/* the codes (unsigned bytes) of chunk c (32 values), step s: values 4s..4s+3 of the 16 rows */
static inline __attribute__((always_inline)) __m512i k235_step(const int t, const uint8_t *ch, int c, int s) {
    if (t == T_Q5_K) {
        const __m512i v = _mm512_loadu_si512(ch + 320 + (8 * (c >> 1) + s) * 64);
        const __m512i nib = _mm512_and_si512(c & 1 ? _mm512_srli_epi16(v, 4) : v, _mm512_set1_epi8(0x0F));
        const __m512i h = _mm512_loadu_si512(ch + 2368 + s * 64);
        const __m512i hb = c <= 4 ? _mm512_slli_epi16(h, 4 - c) : _mm512_srli_epi16(h, c - 4);
        return _mm512_or_si512(nib, _mm512_and_si512(hb, _mm512_set1_epi8(0x10)));
    }
    const uint8_t *q = ch + (t == T_Q2_K ? 320 : 288);
    const __m512i v = _mm512_loadu_si512(q + (8 * (c >> 2) + s) * 64);
    const __m512i lo = _mm512_and_si512(_mm512_srli_epi16(v, 2 * (c & 3)), _mm512_set1_epi8(3));
    if (t == T_Q2_K) return lo;
    const __m512i h = _mm512_loadu_si512(ch + 1312 + s * 64);
    const __m512i hb = c <= 2 ? _mm512_slli_epi16(h, 2 - c) : _mm512_srli_epi16(h, c - 2);
    return _mm512_or_si512(lo, _mm512_and_si512(hb, _mm512_set1_epi8(4)));
}

/* the scales of chunk c (32 values) for its first / second 16 values; Q5_K: one per chunk (both the same) */
static inline __attribute__((always_inline)) void k235_scales(const int t, const uint8_t *ch, int c, __m512i *lo,
                                                             __m512i *hi) {
    if (t == T_Q5_K) { *lo = *hi = bytes16(ch + 64 + 16 * c); return; }
    if (t == T_Q3_K) { *lo = sbytes16(ch + 32 + 32 * c); *hi = sbytes16(ch + 48 + 32 * c); return; }
    *lo = _mm512_and_si512(bytes16(ch + 64 + 32 * c), _mm512_set1_epi32(15));
    *hi = _mm512_and_si512(bytes16(ch + 80 + 32 * c), _mm512_set1_epi32(15));
}

/* Q3_K / Q5_K, one activation row: ggml_vec_dot's 8 lanes per super-block, hsum_float_8 (+ Q5_K's summs) */
static inline __attribute__((always_inline)) void k35_vec(const int t, const uint8_t *ch0, const kacts *A, int64_t b,
                                                         float *out) {
    const int64_t chunk = t == T_Q3_K ? Q3K_CHUNK : Q5K_CHUNK;
    __m512 acc[8], summs = _mm512_setzero_ps();
    for (int s = 0; s < 8; s++) acc[s] = _mm512_setzero_ps();
    for (int64_t i = 0; i < A->nsb; i++) {
        const uint8_t *ch = ch0 + i * chunk;
        const int8_t *a = A->a + b * A->n_in + 256 * i;
        const int32_t *c4 = t == T_Q3_K ? A->c4 + b * (A->n_in / 4) + 64 * i : NULL;
        __m512i L[8];
        for (int s = 0; s < 8; s++) L[s] = _mm512_setzero_si512();
        for (int c = 0; c < 8; c++) {
            __m512i slo, shi;
            k235_scales(t, ch, c, &slo, &shi);
            for (int s = 0; s < 8; s++) {
                const __m512i init = t == T_Q3_K ? _mm512_set1_epi32(c4[8 * c + s]) : _mm512_setzero_si512();
                const __m512i p = _mm512_dpbusd_epi32(init, k235_step(t, ch, c, s), bcast4(a + 32 * c + 4 * s));
                L[s] = _mm512_add_epi32(L[s], _mm512_mullo_epi32(p, s < 4 ? slo : shi));
            }
        }
        const float dx = A->dx[b * A->nsb + i];
        const __m512 d = _mm512_mul_ps(_mm512_set1_ps(dx), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)ch)));
        for (int s = 0; s < 8; s++) acc[s] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(L[s]), acc[s]);
        if (t == T_Q5_K) {
            const int32_t *bs = A->bs32 + b * 8 * A->nsb + 8 * i;
            __m512i im = _mm512_setzero_si512();
            for (int j = 0; j < 8; j++)
                im = _mm512_add_epi32(im, _mm512_mullo_epi32(bytes16(ch + 192 + 16 * j), _mm512_set1_epi32(bs[j])));
            const __m512 dmn = _mm512_mul_ps(_mm512_set1_ps(-dx), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(ch + 32))));
            summs = _mm512_fmadd_ps(dmn, _mm512_cvtepi32_ps(im), summs);
        }
    }
    __m512 h = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(acc[4], acc[0]), _mm512_add_ps(acc[6], acc[2])),
                             _mm512_add_ps(_mm512_add_ps(acc[5], acc[1]), _mm512_add_ps(acc[7], acc[3])));
    if (t == T_Q5_K) h = _mm512_add_ps(h, summs);
    _mm512_storeu_ps(out, h);
}

/* per super-block, per activation row c of C: the integers of chunks [c0, c1): s1 = sum_g sc_g dot_g (Q3_K: the
 * weights q - 4) and, with mins, s2 = sum_g mn_g bsum_g */
static inline __attribute__((always_inline)) void k235_sums(const int t, const int C, const uint8_t *ch, const kacts *A,
                                                           int64_t b, int64_t i, int c0, int c1, __m512i *s1,
                                                           __m512i *s2) {
    for (int k = 0; k < C; k++) s1[k] = s2[k] = _mm512_setzero_si512();
    for (int c = c0; c < c1; c++) {
        __m512i lo[4], hi[4], slo, shi;
        for (int k = 0; k < C; k++) {
            const int16_t *bs = A->bs16 + (b + k) * 16 * A->nsb + 16 * i + 2 * c;
            lo[k] = t == T_Q3_K ? _mm512_set1_epi32(-4 * bs[0]) : _mm512_setzero_si512();
            hi[k] = t == T_Q3_K ? _mm512_set1_epi32(-4 * bs[1]) : _mm512_setzero_si512();
        }
        for (int s = 0; s < 8; s++) {
            const __m512i u = k235_step(t, ch, c, s);
            for (int k = 0; k < C; k++) {
                const __m512i av = bcast4(A->a + (b + k) * A->n_in + 256 * i + 32 * c + 4 * s);
                if (s < 4 || t == T_Q5_K) lo[k] = _mm512_dpbusd_epi32(lo[k], u, av);
                else hi[k] = _mm512_dpbusd_epi32(hi[k], u, av);
            }
        }
        k235_scales(t, ch, c, &slo, &shi);
        for (int k = 0; k < C; k++) {
            s1[k] = _mm512_add_epi32(s1[k], _mm512_mullo_epi32(lo[k], slo));
            if (t != T_Q5_K) s1[k] = _mm512_add_epi32(s1[k], _mm512_mullo_epi32(hi[k], shi));
        }
        if (t == T_Q2_K) {
            const __m512i mlo = _mm512_srli_epi32(bytes16(ch + 64 + 32 * c), 4);
            const __m512i mhi = _mm512_srli_epi32(bytes16(ch + 80 + 32 * c), 4);
            for (int k = 0; k < C; k++) {
                const int16_t *bs = A->bs16 + (b + k) * 16 * A->nsb + 16 * i + 2 * c;
                s2[k] = _mm512_add_epi32(s2[k], _mm512_add_epi32(_mm512_mullo_epi32(mlo, _mm512_set1_epi32(bs[0])),
                                                                 _mm512_mullo_epi32(mhi, _mm512_set1_epi32(bs[1]))));
            }
        } else if (t == T_Q5_K) {
            const __m512i mn = bytes16(ch + 192 + 16 * c);
            for (int k = 0; k < C; k++)
                s2[k] = _mm512_add_epi32(s2[k], _mm512_mullo_epi32(
                    mn, _mm512_set1_epi32(A->bs32[(b + k) * 8 * A->nsb + 8 * i + c])));
        }
    }
}

/* Q3_K / Q5_K, C activation rows: the tiled kernel's arithmetic */
static inline __attribute__((always_inline)) void k35_tiled(const int t, const int C, const uint8_t *ch0,
                                                           const kacts *A, int64_t b, float *out, int64_t ldo) {
    const int64_t chunk = t == T_Q3_K ? Q3K_CHUNK : Q5K_CHUNK;
    __m512 tacc[4];
    for (int k = 0; k < C; k++) tacc[k] = _mm512_setzero_ps();
    for (int64_t i = 0; i < A->nsb; i++) {
        const uint8_t *ch = ch0 + i * chunk;
        __m512i s1[4], s2[4];
        k235_sums(t, C, ch, A, b, i, 0, 8, s1, s2);
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)ch));
        const __m512 dmin = t == T_Q5_K ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(ch + 32))) : dw;
        for (int k = 0; k < C; k++) {
            __m512 r = _mm512_mul_ps(_mm512_cvtepi32_ps(s1[k]), dw);
            if (t == T_Q5_K) r = _mm512_fnmadd_ps(dmin, _mm512_cvtepi32_ps(s2[k]), r);
            tacc[k] = _mm512_fmadd_ps(r, _mm512_set1_ps(A->dx[(b + k) * A->nsb + i]), tacc[k]);
        }
    }
    for (int k = 0; k < C; k++) _mm512_storeu_ps(out + (b + k) * ldo, tacc[k]);
}

/* Q2_K, C activation rows: the repacked gemm (gemm: per half super-block) or gemv (per super-block) */
static inline __attribute__((always_inline)) void q2k_tile(const int C, const int gemm, const uint8_t *ch0,
                                                          const kacts *A, int64_t b, float *out, int64_t ldo) {
    __m512 acc[4], accm[4];
    for (int k = 0; k < C; k++) acc[k] = accm[k] = _mm512_setzero_ps();
    for (int64_t i = 0; i < A->nsb; i++) {
        const uint8_t *ch = ch0 + i * Q2K_CHUNK;
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)ch));
        const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(ch + 32)));
        __m512 dd[4], dm[4];
        for (int k = 0; k < C; k++) {
            const __m512 x = _mm512_set1_ps(A->dx[(b + k) * A->nsb + i]);
            dd[k] = _mm512_mul_ps(dw, x);
            dm[k] = _mm512_mul_ps(dmin, x);
        }
        __m512i is[2][4], im[2][4];
        k235_sums(T_Q2_K, C, ch, A, b, i, 0, 4, is[0], im[0]);
        k235_sums(T_Q2_K, C, ch, A, b, i, 4, 8, is[1], im[1]);
        for (int k = 0; k < C; k++) {
            if (gemm) {
                for (int hh = 0; hh < 2; hh++) {
                    acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[hh][k]), dd[k], acc[k]);
                    accm[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(im[hh][k]), dm[k], accm[k]);
                }
            } else {
                acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(is[0][k], is[1][k])), dd[k], acc[k]);
                accm[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(im[0][k], im[1][k])), dm[k], accm[k]);
            }
        }
    }
    for (int k = 0; k < C; k++) _mm512_storeu_ps(out + (b + k) * ldo, _mm512_sub_ps(acc[k], accm[k]));
}

/* one 16-row group against activation rows [b0, b1); B4: rows below it are Q4_K / Q2_K gemm rows; tiled: the
 * tiled kernel's arithmetic (Q3_K, Q5_K, Q6_K) */
static void kgroup(int t, const uint8_t *ch0, const kacts *A, int64_t b0, int64_t b1, int64_t B4, int tiled,
                   float *out, int64_t ldo) {
    int64_t b = b0;
    if (t == T_Q2_K) {
        const int64_t gend = b1 < B4 ? b1 : B4;
        for (; b + 4 <= gend; b += 4) q2k_tile(4, 1, ch0, A, b, out, ldo);
        for (; b < b1; b++) q2k_tile(1, 0, ch0, A, b, out, ldo);
        return;
    }
    if (t == T_Q3_K || t == T_Q5_K) {
        if (!tiled) {
            for (; b < b1; b++) {
                if (t == T_Q3_K) k35_vec(T_Q3_K, ch0, A, b, out + b * ldo);
                else k35_vec(T_Q5_K, ch0, A, b, out + b * ldo);
            }
            return;
        }
        for (; b + 4 <= b1; b += 4) {
            if (t == T_Q3_K) k35_tiled(T_Q3_K, 4, ch0, A, b, out, ldo);
            else k35_tiled(T_Q5_K, 4, ch0, A, b, out, ldo);
        }
        for (; b < b1; b++) {
            if (t == T_Q3_K) k35_tiled(T_Q3_K, 1, ch0, A, b, out, ldo);
            else k35_tiled(T_Q5_K, 1, ch0, A, b, out, ldo);
        }
        return;
    }
    if (t == T_Q4_K) {
        const int64_t gend = b1 < B4 ? b1 : B4;
        for (; b + 4 <= gend; b += 4) q4k_tile(4, 1, ch0, A, b, out, ldo);
        for (; b < b1; b++) q4k_tile(1, 0, ch0, A, b, out, ldo);
        return;
    }
    if (!tiled) {
        for (; b < b1; b++) q6k_vec(ch0, A, b, out + b * ldo);
        return;
    }
    for (; b + 4 <= b1; b += 4) q6k_tiled_sum(4, ch0, A, b, out, ldo);
    for (; b + 2 <= b1; b += 2) q6k_tiled(2, ch0, A, b, out, ldo);
    if (b < b1) q6k_tiled(1, ch0, A, b, out, ldo);
}

#else /* AVX2: the same lanes, 8 rows (half a group, h) per vector, one activation row at a time */

static inline __m256i bcast4(const int8_t *a) { int32_t v; memcpy(&v, a, 4); return _mm256_set1_epi32(v); }
static inline __m256i bytes8(const uint8_t *p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)); }
static inline __m256i sbytes8(const uint8_t *p) { return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)); }
static inline __m256 halves8(const uint8_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
static inline __m256i vq(const uint8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
#define MUL32 _mm256_mullo_epi32
#define ADD32 _mm256_add_epi32

static inline __m256 hsum_lanes(const __m256 *acc) {
    return _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(acc[4], acc[0]), _mm256_add_ps(acc[6], acc[2])),
                         _mm256_add_ps(_mm256_add_ps(acc[5], acc[1]), _mm256_add_ps(acc[7], acc[3])));
}

/* Q4_K, rows 8h.. x activation row b; gemm: per pair of sub-blocks */
static inline __attribute__((always_inline)) void q4k_half(const int gemm, const uint8_t *ch0, const kacts *A,
                                                          int64_t b, int h, float *out) {
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t i = 0; i < A->nsb; i++) {
        const uint8_t *ch = ch0 + i * Q4K_CHUNK, *q = ch + 320 + 32 * h;
        const __m256 x = _mm256_set1_ps(A->dx[b * A->nsb + i]);
        const __m256 dd = _mm256_mul_ps(halves8(ch + 16 * h), x), dm = _mm256_mul_ps(halves8(ch + 32 + 16 * h), x);
        __m256i isum = _mm256_setzero_si256(), imin = _mm256_setzero_si256();
        for (int m = 0; m < 4; m++) {
            __m256i dlo = _mm256_setzero_si256(), dhi = _mm256_setzero_si256();
            const int8_t *a = A->a + b * A->n_in + 256 * i + 64 * m;
            for (int s = 0; s < 8; s++) {
                const __m256i v = vq(q + (8 * m + s) * 64);
                dlo = dp4(dlo, _mm256_and_si256(v, m4), bcast4(a + 4 * s), 0);
                dhi = dp4(dhi, _mm256_and_si256(_mm256_srli_epi16(v, 4), m4), bcast4(a + 32 + 4 * s), 0);
            }
            const uint8_t *sc = ch + 64 + 32 * m + 8 * h, *mn = ch + 192 + 32 * m + 8 * h;
            const int32_t *bs = A->bs32 + b * 8 * A->nsb + 8 * i + 2 * m;
            const __m256i is = ADD32(MUL32(bytes8(sc), dlo), MUL32(bytes8(sc + 16), dhi));
            const __m256i im = ADD32(MUL32(bytes8(mn), _mm256_set1_epi32(bs[0])),
                                     MUL32(bytes8(mn + 16), _mm256_set1_epi32(bs[1])));
            if (gemm) {
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), dd, acc);
                accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(im), dm, accm);
            } else {
                isum = ADD32(isum, is);
                imin = ADD32(imin, im);
            }
        }
        if (!gemm) {
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), dd, acc);
            accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(imin), dm, accm);
        }
    }
    _mm256_storeu_ps(out, _mm256_sub_ps(acc, accm));
}

/* Q6_K: the 8 integer lanes of super-block i, rows 8h.. x activation row b */
static inline __attribute__((always_inline)) void q6k_lanes(const uint8_t *ch, const kacts *A, int64_t b, int64_t i,
                                                           int h, __m256i *L) {
    const int8_t *a = A->a + b * A->n_in + 256 * i;
    const uint8_t *sc = ch + 32 + 8 * h;
    for (int s = 0; s < 8; s++) L[s] = _mm256_setzero_si256();
    for (int c8 = 0; c8 < 8; c8++) {
        const __m256i s_lo = sbytes8(sc + 32 * c8), s_hi = sbytes8(sc + 32 * c8 + 16);
        for (int s = 0; s < 8; s++) {
            const __m256i v = vq(ch + Q6K_Q + (8 * (c8 >> 1) + s) * 64 + 32 * h);
            const __m256i nib = _mm256_and_si256(c8 & 1 ? _mm256_srli_epi16(v, 4) : v, _mm256_set1_epi8(0x0F));
            const __m256i hv = vq(ch + Q6K_Q + 2048 + (8 * (c8 >> 2) + s) * 64 + 32 * h);
            const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hv, 2 * (c8 & 3)), _mm256_set1_epi8(3));
            const __m256i p = dp4(_mm256_setzero_si256(), _mm256_or_si256(nib, _mm256_slli_epi16(hb, 4)),
                                  bcast4(a + 32 * c8 + 4 * s), 0);
            L[s] = ADD32(L[s], MUL32(p, s < 4 ? s_lo : s_hi));
        }
    }
    const int16_t *bs = A->bs16 + b * 16 * A->nsb + 16 * i;
    for (int s = 0; s < 8; s++) {
        const __m256i corr = ADD32(MUL32(sbytes8(sc + 32 * s), _mm256_set1_epi32(bs[2 * s])),
                                   MUL32(sbytes8(sc + 32 * s + 16), _mm256_set1_epi32(bs[2 * s + 1])));
        L[s] = _mm256_sub_epi32(L[s], _mm256_slli_epi32(corr, 5));
    }
}

/* Q6_K: ggml_vec_dot's 8 lanes (or, tiled, the tiled kernel's one sum) */
static inline __attribute__((always_inline)) void q6k_half(const int tiled, const uint8_t *ch0, const kacts *A,
                                                          int64_t b, int h, float *out) {
    __m256 acc[8], tacc = _mm256_setzero_ps();
    __m256i L[8];
    for (int s = 0; s < 8; s++) acc[s] = _mm256_setzero_ps();
    for (int64_t i = 0; i < A->nsb; i++) {
        const uint8_t *ch = ch0 + i * Q6K_CHUNK;
        q6k_lanes(ch, A, b, i, h, L);
        const __m256 dw = halves8(ch + 16 * h), x = _mm256_set1_ps(A->dx[b * A->nsb + i]);
        if (tiled) {
            __m256i s1 = L[0];
            for (int s = 1; s < 8; s++) s1 = ADD32(s1, L[s]);
            tacc = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s1), dw), x, tacc);
        } else {
            const __m256 d = _mm256_mul_ps(x, dw);
            for (int s = 0; s < 8; s++) acc[s] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(L[s]), acc[s]);
        }
    }
    _mm256_storeu_ps(out, tiled ? tacc : hsum_lanes(acc));
}

/* ---- Q2_K, Q3_K, Q5_K ---- */

/* the codes (unsigned bytes) of chunk c (32 values), step s: values 4s..4s+3 of rows 8h.. */
static inline __attribute__((always_inline)) __m256i k235_step(const int t, const uint8_t *ch, int c, int s, int h) {
    if (t == T_Q5_K) {
        const __m256i v = vq(ch + 320 + (8 * (c >> 1) + s) * 64 + 32 * h);
        const __m256i nib = _mm256_and_si256(c & 1 ? _mm256_srli_epi16(v, 4) : v, _mm256_set1_epi8(0x0F));
        const __m256i hv = vq(ch + 2368 + s * 64 + 32 * h);
        const __m256i hb = c <= 4 ? _mm256_slli_epi16(hv, 4 - c) : _mm256_srli_epi16(hv, c - 4);
        return _mm256_or_si256(nib, _mm256_and_si256(hb, _mm256_set1_epi8(0x10)));
    }
    const uint8_t *q = ch + (t == T_Q2_K ? 320 : 288);
    const __m256i v = vq(q + (8 * (c >> 2) + s) * 64 + 32 * h);
    const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(v, 2 * (c & 3)), _mm256_set1_epi8(3));
    if (t == T_Q2_K) return lo;
    const __m256i hv = vq(ch + 1312 + s * 64 + 32 * h);
    const __m256i hb = c <= 2 ? _mm256_slli_epi16(hv, 2 - c) : _mm256_srli_epi16(hv, c - 2);
    return _mm256_or_si256(lo, _mm256_and_si256(hb, _mm256_set1_epi8(4)));
}

/* the scales of chunk c for its first / second 16 values; Q5_K: one per chunk (both the same) */
static inline __attribute__((always_inline)) void k235_scales(const int t, const uint8_t *ch, int c, int h,
                                                             __m256i *lo, __m256i *hi) {
    if (t == T_Q5_K) { *lo = *hi = bytes8(ch + 64 + 16 * c + 8 * h); return; }
    if (t == T_Q3_K) { *lo = sbytes8(ch + 32 + 32 * c + 8 * h); *hi = sbytes8(ch + 48 + 32 * c + 8 * h); return; }
    *lo = _mm256_and_si256(bytes8(ch + 64 + 32 * c + 8 * h), _mm256_set1_epi32(15));
    *hi = _mm256_and_si256(bytes8(ch + 80 + 32 * c + 8 * h), _mm256_set1_epi32(15));
}

/* Q3_K / Q5_K, one activation row: ggml_vec_dot's 8 lanes per super-block, hsum_float_8 (+ Q5_K's summs) */
static inline __attribute__((always_inline)) void k35_vec(const int t, const uint8_t *ch0, const kacts *A, int64_t b,
                                                         int h, float *out) {
    const int64_t chunk = t == T_Q3_K ? Q3K_CHUNK : Q5K_CHUNK;
    __m256 acc[8], summs = _mm256_setzero_ps();
    for (int s = 0; s < 8; s++) acc[s] = _mm256_setzero_ps();
    for (int64_t i = 0; i < A->nsb; i++) {
        const uint8_t *ch = ch0 + i * chunk;
        const int8_t *a = A->a + b * A->n_in + 256 * i;
        const int32_t *c4 = t == T_Q3_K ? A->c4 + b * (A->n_in / 4) + 64 * i : NULL;
        __m256i L[8];
        for (int s = 0; s < 8; s++) L[s] = _mm256_setzero_si256();
        for (int c = 0; c < 8; c++) {
            __m256i slo, shi;
            k235_scales(t, ch, c, h, &slo, &shi);
            for (int s = 0; s < 8; s++) {
                const __m256i init = t == T_Q3_K ? _mm256_set1_epi32(c4[8 * c + s]) : _mm256_setzero_si256();
                const __m256i p = dp4(init, k235_step(t, ch, c, s, h), bcast4(a + 32 * c + 4 * s), 0);
                L[s] = ADD32(L[s], MUL32(p, s < 4 ? slo : shi));
            }
        }
        const float dx = A->dx[b * A->nsb + i];
        const __m256 d = _mm256_mul_ps(_mm256_set1_ps(dx), halves8(ch + 16 * h));
        for (int s = 0; s < 8; s++) acc[s] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(L[s]), acc[s]);
        if (t == T_Q5_K) {
            const int32_t *bs = A->bs32 + b * 8 * A->nsb + 8 * i;
            __m256i im = _mm256_setzero_si256();
            for (int j = 0; j < 8; j++)
                im = ADD32(im, MUL32(bytes8(ch + 192 + 16 * j + 8 * h), _mm256_set1_epi32(bs[j])));
            const __m256 dmn = _mm256_mul_ps(_mm256_set1_ps(-dx), halves8(ch + 32 + 16 * h));
            summs = _mm256_fmadd_ps(dmn, _mm256_cvtepi32_ps(im), summs);
        }
    }
    __m256 r = hsum_lanes(acc);
    if (t == T_Q5_K) r = _mm256_add_ps(r, summs);
    _mm256_storeu_ps(out, r);
}

/* per super-block i, activation row b: the integers of chunks [c0, c1): s1 = sum_g sc_g dot_g (Q3_K: the weights
 * q - 4) and, with mins, s2 = sum_g mn_g bsum_g */
static inline __attribute__((always_inline)) void k235_sums(const int t, const uint8_t *ch, const kacts *A, int64_t b,
                                                           int64_t i, int c0, int c1, int h, __m256i *s1,
                                                           __m256i *s2) {
    *s1 = *s2 = _mm256_setzero_si256();
    const int8_t *a = A->a + b * A->n_in + 256 * i;
    for (int c = c0; c < c1; c++) {
        const int16_t *bs = A->bs16 + b * 16 * A->nsb + 16 * i + 2 * c;
        __m256i lo = t == T_Q3_K ? _mm256_set1_epi32(-4 * bs[0]) : _mm256_setzero_si256();
        __m256i hi = t == T_Q3_K ? _mm256_set1_epi32(-4 * bs[1]) : _mm256_setzero_si256();
        for (int s = 0; s < 8; s++) {
            const __m256i u = k235_step(t, ch, c, s, h), av = bcast4(a + 32 * c + 4 * s);
            if (s < 4 || t == T_Q5_K) lo = dp4(lo, u, av, 0);
            else hi = dp4(hi, u, av, 0);
        }
        __m256i slo, shi;
        k235_scales(t, ch, c, h, &slo, &shi);
        *s1 = ADD32(*s1, MUL32(lo, slo));
        if (t != T_Q5_K) *s1 = ADD32(*s1, MUL32(hi, shi));
        if (t == T_Q2_K) {
            const __m256i mlo = _mm256_srli_epi32(bytes8(ch + 64 + 32 * c + 8 * h), 4);
            const __m256i mhi = _mm256_srli_epi32(bytes8(ch + 80 + 32 * c + 8 * h), 4);
            *s2 = ADD32(*s2, ADD32(MUL32(mlo, _mm256_set1_epi32(bs[0])), MUL32(mhi, _mm256_set1_epi32(bs[1]))));
        } else if (t == T_Q5_K) {
            *s2 = ADD32(*s2, MUL32(bytes8(ch + 192 + 16 * c + 8 * h),
                                   _mm256_set1_epi32(A->bs32[b * 8 * A->nsb + 8 * i + c])));
        }
    }
}

/* Q3_K / Q5_K: the tiled kernel's arithmetic */
static inline __attribute__((always_inline)) void k35_tiled(const int t, const uint8_t *ch0, const kacts *A,
                                                           int64_t b, int h, float *out) {
    const int64_t chunk = t == T_Q3_K ? Q3K_CHUNK : Q5K_CHUNK;
    __m256 tacc = _mm256_setzero_ps();
    for (int64_t i = 0; i < A->nsb; i++) {
        const uint8_t *ch = ch0 + i * chunk;
        __m256i s1, s2;
        k235_sums(t, ch, A, b, i, 0, 8, h, &s1, &s2);
        const __m256 dw = halves8(ch + 16 * h);
        __m256 r = _mm256_mul_ps(_mm256_cvtepi32_ps(s1), dw);
        if (t == T_Q5_K) r = _mm256_fnmadd_ps(halves8(ch + 32 + 16 * h), _mm256_cvtepi32_ps(s2), r);
        tacc = _mm256_fmadd_ps(r, _mm256_set1_ps(A->dx[b * A->nsb + i]), tacc);
    }
    _mm256_storeu_ps(out, tacc);
}

/* Q2_K: the repacked gemm (gemm: per half super-block) or gemv (per super-block) */
static inline __attribute__((always_inline)) void q2k_half(const int gemm, const uint8_t *ch0, const kacts *A,
                                                          int64_t b, int h, float *out) {
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t i = 0; i < A->nsb; i++) {
        const uint8_t *ch = ch0 + i * Q2K_CHUNK;
        const __m256 x = _mm256_set1_ps(A->dx[b * A->nsb + i]);
        const __m256 dd = _mm256_mul_ps(halves8(ch + 16 * h), x), dm = _mm256_mul_ps(halves8(ch + 32 + 16 * h), x);
        __m256i is[2], im[2];
        k235_sums(T_Q2_K, ch, A, b, i, 0, 4, h, &is[0], &im[0]);
        k235_sums(T_Q2_K, ch, A, b, i, 4, 8, h, &is[1], &im[1]);
        if (gemm) {
            for (int hh = 0; hh < 2; hh++) {
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[hh]), dd, acc);
                accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(im[hh]), dm, accm);
            }
        } else {
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ADD32(is[0], is[1])), dd, acc);
            accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ADD32(im[0], im[1])), dm, accm);
        }
    }
    _mm256_storeu_ps(out, _mm256_sub_ps(acc, accm));
}

/* one 16-row group against activation rows [b0, b1) (see the AVX-512 kgroup) */
static void kgroup(int t, const uint8_t *ch0, const kacts *A, int64_t b0, int64_t b1, int64_t B4, int tiled,
                   float *out, int64_t ldo) {
    for (int64_t b = b0; b < b1; b++)
        for (int h = 0; h < 2; h++) {
            float *o = out + b * ldo + 8 * h;
            const int gemm = b < B4;
            switch (t) {
            case T_Q2_K: if (gemm) q2k_half(1, ch0, A, b, h, o); else q2k_half(0, ch0, A, b, h, o); break;
            case T_Q4_K: if (gemm) q4k_half(1, ch0, A, b, h, o); else q4k_half(0, ch0, A, b, h, o); break;
            case T_Q6_K: if (tiled) q6k_half(1, ch0, A, b, h, o); else q6k_half(0, ch0, A, b, h, o); break;
            case T_Q3_K:
                if (tiled) k35_tiled(T_Q3_K, ch0, A, b, h, o); else k35_vec(T_Q3_K, ch0, A, b, h, o);
                break;
            case T_Q5_K:
                if (tiled) k35_tiled(T_Q5_K, ch0, A, b, h, o); else k35_vec(T_Q5_K, ch0, A, b, h, o);
                break;
            }
        }
}
#undef MUL32
#undef ADD32

#endif /* HQ_AVX512 */

#endif /* HQ_SIMD */

/* Y_i[B, n_out_i] = X[B, n_in] @ W_i^T for n matrices W_i packed by pk_pack (q, k, v or gate, up): the activations
 * are quantized once and the row groups of all the matrices shared out in one parallel region. The types must
 * quantize the activations alike (Q4_K and Q2_K rows in whole groups of 4 take their gemm's Q8_K sign rule: not with
 * the other types, unless rows_alone). rows_alone: the rows are separate sequences decoded together (a server's
 * batch): each gets the arithmetic of a batch of one, so its result does not depend on its companions. Returns 0 on
 * success (1: not supported, 2: no memory). */
int pk_matmul_multi(int n, const int *types, const uint8_t *const *Ps, const int64_t *n_outs, int64_t n_in,
                    const float *X, int64_t B, float *const *Ys, int nthreads, int rows_alone) {
#ifndef HQ_SIMD
    (void)n; (void)types; (void)Ps; (void)n_outs; (void)n_in; (void)X; (void)B; (void)Ys; (void)nthreads;
    (void)rows_alone;
    return 1;
#else
    enum { NMAX = 8 };
    if (n < 1 || n > NMAX || n_in % 256 || B <= 0) return 1;
    const int64_t nsb = n_in / 256;
    int64_t first[NMAX + 1], B4 = -1, work = 0;
    int want_c4 = 0;
    const int tiled = B >= 8 && !rows_alone;
    first[0] = 0;
    for (int i = 0; i < n; i++) {
        const int t = types[i];
        if (!pk_chunk(t) || n_outs[i] % 16) return 1;
        const int64_t b4 = (t == T_Q4_K || t == T_Q2_K) && !rows_alone ? B - B % 4 : 0;
        if (B4 >= 0 && b4 != B4) return 1;
        B4 = b4;
        want_c4 |= t == T_Q3_K && !tiled;
        first[i + 1] = first[i] + n_outs[i] / 16;
        work += B * n_outs[i] * nsb * pk_chunk(t) / 16;
    }
    const int64_t ng = first[n];
    int8_t *qa = (int8_t *)aligned_alloc(64, (size_t)(B * n_in));
    float *dx = (float *)malloc((size_t)(B * nsb) * sizeof(float));
    int32_t *bs32 = (int32_t *)malloc((size_t)(B * nsb * 8) * sizeof(int32_t));
    int16_t *bs16 = (int16_t *)malloc((size_t)(B * nsb * 16) * sizeof(int16_t));
    int32_t *c4 = want_c4 ? (int32_t *)malloc((size_t)(B * n_in / 4) * sizeof(int32_t)) : NULL;
    if (!qa || !dx || !bs32 || !bs16 || (want_c4 && !c4)) {
        free(qa); free(dx); free(bs32); free(bs16); free(c4); return 2;
    }
    const kacts A = {qa, dx, bs32, bs16, n_in, nsb, c4};
    const int64_t B_pre = B <= 4 ? B : 0; /* a few rows: quantized before the parallel region, no barrier */
    for (int64_t b = 0; b < B_pre; b++) quant_k_row(X, n_in, b, b < B4, &A);
    if (nthreads < 1) nthreads = 1;
    if (work < (384 << 10)) nthreads = 1;
    const int64_t BC = 64;
#pragma omp parallel num_threads(nthreads)
    {
        if (!B_pre) {
#pragma omp for schedule(static)
            for (int64_t b = 0; b < B; b++) quant_k_row(X, n_in, b, b < B4, &A);
        }
        for (int64_t b0 = 0; b0 < B; b0 += BC) {
            const int64_t b1 = b0 + BC < B ? b0 + BC : B;
#pragma omp for schedule(static)
            for (int64_t g = 0; g < ng; g++) {
                int i = 0;
                while (g >= first[i + 1]) i++;
                const int64_t gi = g - first[i];
                kgroup(types[i], Ps[i] + gi * nsb * pk_chunk(types[i]), &A, b0, b1, B4, tiled, Ys[i] + 16 * gi,
                       n_outs[i]);
            }
        }
    }
    free(qa); free(dx); free(bs32); free(bs16); free(c4);
    return 0;
#endif
}

/* Y[B, n_out] = X[B, n_in] @ W^T with W packed by pk_pack (see pk_matmul_multi). */
int pk_matmul(int t, const uint8_t *P, int64_t n_out, int64_t n_in, const float *X, int64_t B, float *Y,
              int nthreads, int rows_alone) {
    return pk_matmul_multi(1, &t, &P, &n_out, n_in, X, B, &Y, nthreads, rows_alone);
}
