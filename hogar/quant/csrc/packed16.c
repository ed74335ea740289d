/* Block-32 weights (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL) repacked 16 rows at a time, for AVX-512 matmuls that keep one
 * output row per 32-bit lane (AVX2: the same lanes, 8 rows, half a group, per vector).
 *
 * In the GGUF layout each row's blocks sit together, so a kernel must unpack every block before its integer dot
 * product.  Repacked, the 16 rows of a group sit side by side: for each block index one chunk holds the 16 rows'
 * scales (f16), then the quants arranged so that one 64-byte vector holds, for every row, 4 consecutive values
 * ("step" s: values 4s..4s+3 of the block; byte 4r+e = value 4s+e of row r).  One vpdpbusd against the 4 activation
 * bytes of that step, broadcast, gives the step's 4-product sum for all 16 rows: exactly the integer lanes that
 * llama.cpp's x86 kernels form, so the same float arithmetic follows, bit for bit:
 *   lanes8 (ggml_vec_dot_* and tinyBLAS: Q4_1, Q5_0, Q5_1, Q8_0): row accumulator j gets step j,
 *       acc[j] = fma(d_w * d_x, (float)step_j, acc[j]) block after block; then hsum_float_8; then + summs, the
 *       sequential sum of m_w * s_x (Q4_1, Q5_1);
 *   lane1 (Q4_0 and IQ4_NL, which llama.cpp repacks to q4_0_8x8 / iq4_nl_8x8 on x86 when n_out % 8 == 0;
 *       ggml_gemv/gemm_q4_0_8x8_q8_0, _iq4_nl_8x8_q8_0): acc = fma((float)(the block's whole integer dot), d_w * d_x,
 *       acc).  IQ4_NL packs as Q4_0 (same block layout); its nibbles index the levels + 127 (IQ4NL_U) at run time.
 * The chunk of one (group, block), as large as the 16 GGUF blocks it replaces:
 *   d[16] f16 | m[16] f16 (Q4_1, Q5_1) | 8 x uint64 (Q5_0, Q5_1): bit 4r+e of word s = bit 4 of value 4s+e of row r |
 *   quants: 4-bit types: 4 x 64 bytes, byte 4r+e of vector p = byte 4p+e of row r's qs (low nibble: value 4p+e,
 *   high nibble: value 16+4p+e, i.e. steps p and p+4); Q8_0: 8 x 64 bytes, one per step, stored + 128 (unsigned).
 * Unsigned weights u = w + off make vpdpbusd (unsigned x signed bytes) exact; the integer sums start from
 * -off * (sum of the step's activation bytes).
 */
#include "quant_common.h"

#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct { int qsize, chunk, has_m, hbits, off, lane1; } p16info;

static int p16_info(int t, p16info *p) {
    switch (t) {
    case T_Q4_0: *p = (p16info){18, 288, 0, 0, 8, 1}; return 1;
    case T_Q4_1: *p = (p16info){20, 320, 1, 0, 0, 0}; return 1;
    case T_Q5_0: *p = (p16info){22, 352, 0, 1, 16, 0}; return 1;
    case T_Q5_1: *p = (p16info){24, 384, 1, 1, 0, 0}; return 1;
    case T_Q8_0: *p = (p16info){34, 544, 0, 0, 128, 0}; return 1;
    case T_IQ4_NL: *p = (p16info){18, 288, 0, 0, 127, 1}; return 1;
    default: return 0;
    }
}

int p16_supported(int t) {
#ifdef HQ_SIMD
    p16info p;
    return p16_info(t, &p);
#else
    (void)t;
    return 0;
#endif
}

/* GGUF rows W [n_out][n_in / 32 blocks] -> P (same size). Returns 0 on success. */
int p16_pack(int t, const uint8_t *W, int64_t n_out, int64_t n_in, uint8_t *P, int nthreads) {
    p16info p;
    if (!p16_info(t, &p) || n_out % 16 || n_in % 32) return 1;
    const int64_t nb = n_in / 32, row_bytes = nb * p.qsize, ng = n_out / 16;
    if (nthreads < 1) nthreads = 1;
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t g = 0; g < ng; g++) {
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *c = P + (g * nb + b) * p.chunk;
            memset(c, 0, (size_t)p.chunk);
            for (int r = 0; r < 16; r++) {
                const uint8_t *blk = W + (g * 16 + r) * row_bytes + b * p.qsize;
                uint8_t *o = c;
                memcpy(o + 2 * r, blk, 2);
                o += 32;
                if (p.has_m) {
                    memcpy(o + 2 * r, blk + 2, 2);
                    o += 32;
                }
                const uint8_t *qs = blk + (p.has_m ? 4 : 2);
                if (p.hbits) {
                    uint32_t qh;
                    memcpy(&qh, qs, 4);
                    qs += 4;
                    for (int s = 0; s < 8; s++) {
                        uint64_t word;
                        memcpy(&word, o + 8 * s, 8);
                        for (int e = 0; e < 4; e++) word |= (uint64_t)((qh >> (4 * s + e)) & 1) << (4 * r + e);
                        memcpy(o + 8 * s, &word, 8);
                    }
                    o += 64;
                }
                if (t == T_Q8_0) {
                    for (int s = 0; s < 8; s++)
                        for (int e = 0; e < 4; e++) o[64 * s + 4 * r + e] = qs[4 * s + e] ^ 0x80;
                } else {
                    for (int v = 0; v < 4; v++)
                        for (int e = 0; e < 4; e++) o[64 * v + 4 * r + e] = qs[4 * v + e];
                }
            }
        }
    }
    return 0;
}

#ifdef HQ_SIMD

static inline int32_t load4(const int8_t *a) { int32_t v; memcpy(&v, a, 4); return v; }

typedef struct {
    const int8_t *a;     /* quantized activation rows, stride qstride */
    const float *dx, *S; /* per block: scale d_x; s_x = d_x * sum (Q8_1), stride gstride */
    int32_t *c16, *c128; /* per step: -16 and -128 x the sum of its 4 activation bytes (Q5_0, Q8_0), stride cstride;
                          * kept in memory so that the kernel broadcasts them with a load, not an ALU op */
    int32_t *sum32;      /* per block: the sum of its 32 activation bytes, stride gstride */
    int64_t qstride, gstride, cstride;
} acts;

/* activation row x -> row b of A (int8 values, scales, sums) */
static void quant_acts(const float *x, int64_t n_in, int amode, const acts *A, int64_t b) {
    int8_t *q = (int8_t *)A->a + b * A->qstride;
    quant_row_q8(x, n_in, amode, q, (float *)A->dx + b * A->gstride, (float *)A->S + b * A->gstride);
    for (int64_t k = 0; k < n_in / 32; k++) {
        int32_t bs = 0;
        for (int s = 0; s < 8; s++) {
            const int8_t *a = q + 32 * k + 4 * s;
            const int32_t s4 = (int32_t)a[0] + a[1] + a[2] + a[3];
            A->c16[b * A->cstride + 8 * k + s] = -16 * s4;
            A->c128[b * A->cstride + 8 * k + s] = -128 * s4;
            bs += s4;
        }
        A->sum32[b * A->gstride + k] = bs;
    }
}

#ifdef HQ_AVX512

/* step s of a chunk's quants, as unsigned bytes (value + off) */
static inline __attribute__((always_inline)) __m512i step_u(const int t, const uint8_t *q, const uint8_t *hb,
                                                            const int s) {
    if (t == T_Q8_0) return _mm512_loadu_si512(q + 64 * s);
    __m512i v = _mm512_loadu_si512(q + 64 * (s & 3));
    if (s >= 4) v = _mm512_srli_epi16(v, 4);
    v = _mm512_and_si512(v, _mm512_set1_epi8(0x0F));
    if (hb) {
        uint64_t m;
        memcpy(&m, hb + 8 * s, 8);
        v = _mm512_mask_add_epi8(v, (__mmask64)m, v, _mm512_set1_epi8(16));
    }
    return v;
}

/* lanes8: 16 weight rows (chunks from ch0) x C activation rows from b; out rows of length ldo. ub: the group's
 * steps already unpacked (unpack_group), or NULL */
static inline __attribute__((always_inline)) void tile8(const int t, const int C, const p16info *pi,
                                                        const uint8_t *ch0, int64_t nb, const acts *A, int64_t b,
                                                        float *out, int64_t ldo, const uint8_t *ub) {
    __m512 acc[3][8], summs[3];
    for (int c = 0; c < C; c++) {
        summs[c] = _mm512_setzero_ps();
        for (int s = 0; s < 8; s++) acc[c][s] = _mm512_setzero_ps();
    }
    const int has_m = pi->has_m, hbits = pi->hbits, off = pi->off;
    const int64_t chunk = pi->chunk;
    const int32_t *corr = off == 16 ? A->c16 : A->c128;
    for (int64_t k = 0; k < nb; k++) {
        const uint8_t *ch = ch0 + k * chunk;
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)ch));
        __m512 sc[3];
        for (int c = 0; c < C; c++) sc[c] = _mm512_mul_ps(dw, _mm512_set1_ps(A->dx[(b + c) * A->gstride + k]));
        if (has_m) {
            const __m512 mw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(ch + 32)));
            /* m_w * s_x is exact (two f16 values): the fused multiply-add rounds as the add alone */
            for (int c = 0; c < C; c++)
                summs[c] = _mm512_fmadd_ps(mw, _mm512_set1_ps(A->S[(b + c) * A->gstride + k]), summs[c]);
        }
        const uint8_t *hb = hbits ? ch + 32 * (1 + has_m) : NULL;
        const uint8_t *q = ch + 32 * (1 + has_m) + (hbits ? 64 : 0);
        for (int s = 0; s < 8; s++) {
            const __m512i u = ub ? _mm512_loadu_si512(ub + (8 * k + s) * 64) : step_u(t, q, hb, s);
            for (int c = 0; c < C; c++) {
                const int8_t *a = A->a + (b + c) * A->qstride + 32 * k;
                const __m512i i0 = off ? _mm512_set1_epi32(corr[(b + c) * A->cstride + 8 * k + s])
                                       : _mm512_setzero_si512();
                const __m512i p = _mm512_dpbusd_epi32(i0, u, _mm512_set1_epi32(load4(a + 4 * s)));
                acc[c][s] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), sc[c], acc[c][s]);
            }
        }
    }
    for (int c = 0; c < C; c++) {
        __m512 h = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(acc[c][4], acc[c][0]), _mm512_add_ps(acc[c][6], acc[c][2])),
                                 _mm512_add_ps(_mm512_add_ps(acc[c][5], acc[c][1]), _mm512_add_ps(acc[c][7], acc[c][3])));
        if (has_m) h = _mm512_add_ps(h, summs[c]);
        _mm512_storeu_ps(out + (b + c) * ldo, h);
    }
}

/* every step of a group's nb chunks unpacked to ub (nb x 8 x 64 bytes): the 4- and 5-bit types then run as Q8_0
 * does, their unpacking done once for all the activation rows instead of once per tile */
static void unpack_group(const int t, const p16info *pi, const uint8_t *ch0, int64_t nb, uint8_t *ub) {
    for (int64_t k = 0; k < nb; k++) {
        const uint8_t *ch = ch0 + k * pi->chunk;
        const uint8_t *hb = pi->hbits ? ch + 32 * (1 + pi->has_m) : NULL;
        const uint8_t *q = ch + 32 * (1 + pi->has_m) + (pi->hbits ? 64 : 0);
        for (int s = 0; s < 8; s++) _mm512_storeu_si512(ub + (8 * k + s) * 64, step_u(t, q, hb, s));
    }
}

/* lane1 (Q4_0, or IQ4_NL where iq4): 16 weight rows x C activation rows */
static inline __attribute__((always_inline)) void tile1(const int iq4, const int C, const uint8_t *ch0, int64_t nb,
                                                        const acts *A, int64_t b, float *out, int64_t ldo) {
    __m512 acc[4];
    for (int c = 0; c < C; c++) acc[c] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i lut = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)IQ4NL_U));
    const int32_t off = iq4 ? -127 : -8;
    for (int64_t k = 0; k < nb; k++) {
        const uint8_t *ch = ch0 + k * 288;
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)ch));
        const uint8_t *q = ch + 32;
        __m512i isum[4];
        for (int c = 0; c < C; c++) isum[c] = _mm512_set1_epi32(off * A->sum32[(b + c) * A->gstride + k]);
        for (int v = 0; v < 4; v++) {
            const __m512i raw = _mm512_loadu_si512(q + 64 * v);
            __m512i lo = _mm512_and_si512(raw, m4), hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);
            if (iq4) { lo = _mm512_shuffle_epi8(lut, lo); hi = _mm512_shuffle_epi8(lut, hi); }
            for (int c = 0; c < C; c++) {
                const int8_t *a = A->a + (b + c) * A->qstride + 32 * k;
                isum[c] = _mm512_dpbusd_epi32(isum[c], lo, _mm512_set1_epi32(load4(a + 4 * v)));
                isum[c] = _mm512_dpbusd_epi32(isum[c], hi, _mm512_set1_epi32(load4(a + 16 + 4 * v)));
            }
        }
        for (int c = 0; c < C; c++) {
            const __m512 sc = _mm512_mul_ps(dw, _mm512_set1_ps(A->dx[(b + c) * A->gstride + k]));
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[c]), sc, acc[c]);
        }
    }
    for (int c = 0; c < C; c++) _mm512_storeu_ps(out + (b + c) * ldo, acc[c]);
}

#else /* AVX2: the same lanes, 8 rows (half a group) per vector */

/* step s of a chunk's quants for rows 8h..8h+7, as unsigned bytes (value + off) */
static inline __attribute__((always_inline)) __m256i step_u(const int t, const uint8_t *q, const uint8_t *hb,
                                                            const int s, const int h) {
    if (t == T_Q8_0) return _mm256_loadu_si256((const __m256i *)(q + 64 * s + 32 * h));
    __m256i v = _mm256_loadu_si256((const __m256i *)(q + 64 * (s & 3) + 32 * h));
    if (s >= 4) v = _mm256_srli_epi16(v, 4);
    v = _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
    if (hb) {
        uint32_t m;
        memcpy(&m, hb + 8 * s + 4 * h, 4);
        v = add_fifth(v, m);
    }
    return v;
}

/* lanes8, rows 8h..8h+7 x activation rows b..b+C-1: steps [s0, s0 + P) of every block into acc (C * P vectors
 * in registers: the steps are done in 8 / P passes) */
static inline __attribute__((always_inline)) void steps8(const int t, const int C, const int P, const p16info *pi,
                                                         const uint8_t *ch0, int64_t nb, const acts *A, int64_t b,
                                                         const int h, const int s0, __m256 acc[][8], __m256 *summs) {
    const int has_m = pi->has_m, hbits = pi->hbits, off = dp4_off(pi->off);
    const int32_t *corr = pi->off == 16 ? A->c16 : A->c128;
    __m256 ac[4][8];
    for (int c = 0; c < C; c++)
        for (int s = 0; s < P; s++) ac[c][s] = _mm256_setzero_ps();
    for (int64_t k = 0; k < nb; k++) {
        const uint8_t *ch = ch0 + k * pi->chunk;
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(ch + 16 * h)));
        __m256 sc[4];
        for (int c = 0; c < C; c++) sc[c] = _mm256_mul_ps(dw, _mm256_set1_ps(A->dx[(b + c) * A->gstride + k]));
        if (has_m && s0 == 0) {
            const __m256 mw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(ch + 32 + 16 * h)));
            for (int c = 0; c < C; c++)
                summs[c] = _mm256_fmadd_ps(mw, _mm256_set1_ps(A->S[(b + c) * A->gstride + k]), summs[c]);
        }
        const uint8_t *hb = hbits ? ch + 32 * (1 + has_m) : NULL;
        const uint8_t *q = ch + 32 * (1 + has_m) + (hbits ? 64 : 0);
        for (int s = 0; s < P; s++) {
            const __m256i u = step_u(t, q, hb, s0 + s, h);
            for (int c = 0; c < C; c++) {
                const int64_t row = b + c;
                const __m256i i0 = off ? _mm256_set1_epi32(corr[row * A->cstride + 8 * k + s0 + s])
                                       : _mm256_setzero_si256();
                const __m256i av = _mm256_set1_epi32(load4(A->a + row * A->qstride + 32 * k + 4 * (s0 + s)));
                ac[c][s] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dp4(i0, u, av, t == T_Q8_0)), sc[c], ac[c][s]);
            }
        }
    }
    for (int c = 0; c < C; c++)
        for (int s = 0; s < P; s++) acc[c][s0 + s] = ac[c][s];
}

static inline __attribute__((always_inline)) void tile8(const int t, const int C, const p16info *pi,
                                                        const uint8_t *ch0, int64_t nb, const acts *A, int64_t b,
                                                        float *out, int64_t ldo, const uint8_t *ub) {
    (void)ub; /* AVX2 unpacks as it goes */
    if (C > 1 && (t == T_Q5_0 || t == T_Q5_1)) { /* the fifth bits' constants leave no registers for C rows */
        for (int c = 0; c < C; c++) tile8(t, 1, pi, ch0, nb, A, b + c, out, ldo, NULL);
        return;
    }
    const int P = C == 1 ? 8 : 4;
    for (int h = 0; h < 2; h++) {
        __m256 acc[2][8], summs[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int s0 = 0; s0 < 8; s0 += P) steps8(t, C, P, pi, ch0, nb, A, b, h, s0, acc, summs);
        for (int c = 0; c < C; c++) {
            const __m256 *a = acc[c];
            __m256 r = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a[4], a[0]), _mm256_add_ps(a[6], a[2])),
                                     _mm256_add_ps(_mm256_add_ps(a[5], a[1]), _mm256_add_ps(a[7], a[3])));
            if (pi->has_m) r = _mm256_add_ps(r, summs[c]);
            _mm256_storeu_ps(out + (b + c) * ldo + 8 * h, r);
        }
    }
}

/* lane1 (Q4_0, or IQ4_NL where iq4): 16 weight rows x C activation rows */
static inline __attribute__((always_inline)) void tile1(const int iq4, const int C, const uint8_t *ch0, int64_t nb,
                                                        const acts *A, int64_t b, float *out, int64_t ldo) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i lut = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)IQ4NL_U));
    const int32_t off = -dp4_off(iq4 ? 127 : 8);
    for (int h = 0; h < 2; h++) {
        __m256 acc[4];
        for (int c = 0; c < C; c++) acc[c] = _mm256_setzero_ps();
        for (int64_t k = 0; k < nb; k++) {
            const uint8_t *ch = ch0 + k * 288;
            const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(ch + 16 * h)));
            const uint8_t *q = ch + 32 + 32 * h;
            __m256i isum[4];
            for (int c = 0; c < C; c++) isum[c] = _mm256_set1_epi32(off * A->sum32[(b + c) * A->gstride + k]);
            for (int v = 0; v < 4; v++) {
                const __m256i raw = _mm256_loadu_si256((const __m256i *)(q + 64 * v));
                __m256i lo = _mm256_and_si256(raw, m4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
                if (iq4) { lo = _mm256_shuffle_epi8(lut, lo); hi = _mm256_shuffle_epi8(lut, hi); }
                for (int c = 0; c < C; c++) {
                    const int8_t *a = A->a + (b + c) * A->qstride + 32 * k;
                    isum[c] = dp4(isum[c], lo, _mm256_set1_epi32(load4(a + 4 * v)), iq4);
                    isum[c] = dp4(isum[c], hi, _mm256_set1_epi32(load4(a + 16 + 4 * v)), iq4);
                }
            }
            for (int c = 0; c < C; c++) {
                const __m256 sc = _mm256_mul_ps(dw, _mm256_set1_ps(A->dx[(b + c) * A->gstride + k]));
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), sc, acc[c]);
            }
        }
        for (int c = 0; c < C; c++) _mm256_storeu_ps(out + (b + c) * ldo + 8 * h, acc[c]);
    }
}

#endif /* HQ_AVX512 */

/* one 16-row group against activation rows [b0, b1); scratch: nb x 512 bytes for unpack_group, or NULL */
static void group_rows(int t, const p16info *pi, const uint8_t *ch0, int64_t nb, const acts *A, int64_t b0,
                       int64_t b1, float *out, int64_t ldo, uint8_t *scratch) {
    int64_t b = b0;
    const uint8_t *ub = NULL;
#ifdef HQ_AVX512
    if (scratch && b1 - b0 >= 8 && !pi->lane1 && t != T_Q8_0) {
        unpack_group(t, pi, ch0, nb, scratch);
        ub = scratch;
    }
#else
    (void)scratch;
#endif
#define LANE1(I)                                                                                                      \
    for (; b + 4 <= b1; b += 4) tile1(I, 4, ch0, nb, A, b, out, ldo);                                                 \
    switch (b1 - b) {                                                                                                 \
    case 3: tile1(I, 3, ch0, nb, A, b, out, ldo); break;                                                              \
    case 2: tile1(I, 2, ch0, nb, A, b, out, ldo); break;                                                              \
    case 1: tile1(I, 1, ch0, nb, A, b, out, ldo); break;                                                              \
    }
    if (pi->lane1) {
        if (t == T_IQ4_NL) { LANE1(1) } else { LANE1(0) }
        return;
    }
#undef LANE1
#ifdef HQ_AVX512
#define TILE3(T) for (; ub && b + 3 <= b1; b += 3) tile8(T, 3, pi, ch0, nb, A, b, out, ldo, ub);
#else
#define TILE3(T)
#endif
#define TILES(T)                                                                                                      \
    TILE3(T)                                                                                                          \
    for (; b + 2 <= b1; b += 2) tile8(T, 2, pi, ch0, nb, A, b, out, ldo, ub);                                         \
    if (b < b1) tile8(T, 1, pi, ch0, nb, A, b, out, ldo, ub);
    switch (t) {
    case T_Q4_1: TILES(T_Q4_1) break;
    case T_Q5_0: TILES(T_Q5_0) break;
    case T_Q5_1: TILES(T_Q5_1) break;
    case T_Q8_0: TILES(T_Q8_0) break;
    }
#undef TILES
#undef TILE3
}

#endif /* HQ_SIMD */

static inline int64_t rup(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/* Y_i[B, n_out_i] = X[B, n_in] @ W_i^T for n matrices W_i packed by p16_pack, all of whose types quantize the
 * activations alike (Q8_0 or Q8_1): the activations are quantized once and the row groups of all the matrices shared
 * out among the threads in one parallel region (q, k, v or gate, up in one call). Returns 0 on success (1: not
 * supported, 2: no memory). */
int p16_matmul_multi(int n, const int *types, const uint8_t *const *Ps, const int64_t *n_outs, int64_t n_in,
                     const float *X, int64_t B, float *const *Ys, int nthreads) {
#ifndef HQ_SIMD
    (void)n; (void)types; (void)Ps; (void)n_outs; (void)n_in; (void)X; (void)B; (void)Ys; (void)nthreads;
    return 1;
#else
    enum { NMAX = 8 };
    p16info pi[NMAX];
    qinfo qi;
    if (n < 1 || n > NMAX || n_in % 32 || B <= 0 || !type_info(types[0], &qi)) return 1;
    int64_t first[NMAX + 1], wbytes = 0;
    first[0] = 0;
    for (int i = 0; i < n; i++) {
        qinfo q2;
        if (!p16_info(types[i], &pi[i]) || !type_info(types[i], &q2) || q2.amode != qi.amode || n_outs[i] % 16)
            return 1;
        first[i + 1] = first[i] + n_outs[i] / 16;
        wbytes += n_outs[i] * (n_in / 32) * pi[i].qsize;
    }
    const int64_t nb = n_in / 32, ng = first[n];
    acts A = {0};
    A.qstride = rup(n_in, 64);
    A.gstride = rup(nb, 16);
    A.cstride = rup(n_in / 4, 16);
    int8_t *qa = (int8_t *)aligned_alloc(64, (size_t)(B * A.qstride));
    float *dx = (float *)aligned_alloc(64, (size_t)(B * A.gstride) * sizeof(float));
    float *S = (float *)aligned_alloc(64, (size_t)(B * A.gstride) * sizeof(float));
    int32_t *c16 = (int32_t *)aligned_alloc(64, (size_t)(B * A.cstride) * sizeof(int32_t));
    int32_t *c128 = (int32_t *)aligned_alloc(64, (size_t)(B * A.cstride) * sizeof(int32_t));
    int32_t *sum32 = (int32_t *)aligned_alloc(64, (size_t)(B * A.gstride) * sizeof(int32_t));
    if (!qa || !dx || !S || !c16 || !c128 || !sum32) {
        free(qa); free(dx); free(S); free(c16); free(c128); free(sum32);
        return 2;
    }
    A.a = qa; A.dx = dx; A.S = S; A.c16 = c16; A.c128 = c128; A.sum32 = sum32;
    /* a few activation rows are quantized before the parallel region: a barrier would cost more */
    const int64_t B_pre = B <= 4 ? B : 0;
    for (int64_t b = 0; b < B_pre; b++) quant_acts(X + b * n_in, n_in, qi.amode, &A, b);
    if (nthreads < 1) nthreads = 1;
    if (B * wbytes < (384 << 10)) nthreads = 1; /* below this a second thread costs more than it saves */
    const int64_t BC = 64; /* activation rows per pass over the weights */
#pragma omp parallel num_threads(nthreads)
    {
        uint8_t *scratch = B >= 8 ? aligned_alloc(64, (size_t)(nb * 512)) : NULL;
        if (!B_pre) {
#pragma omp for schedule(static)
            for (int64_t b = 0; b < B; b++) quant_acts(X + b * n_in, n_in, qi.amode, &A, b);
        }
        for (int64_t b0 = 0; b0 < B; b0 += BC) {
            const int64_t b1 = b0 + BC < B ? b0 + BC : B;
#pragma omp for schedule(static)
            for (int64_t g = 0; g < ng; g++) {
                int i = 0;
                while (g >= first[i + 1]) i++;
                group_rows(types[i], &pi[i], Ps[i] + (g - first[i]) * nb * pi[i].chunk, nb, &A, b0, b1,
                           Ys[i] + 16 * (g - first[i]), n_outs[i], scratch);
            }
        }
        free(scratch);
    }
    free(qa); free(dx); free(S); free(c16); free(c128); free(sum32);
    return 0;
#endif
}

int p16_matmul(int t, const uint8_t *P, int64_t n_out, int64_t n_in, const float *X, int64_t B, float *Y,
               int nthreads) {
    return p16_matmul_multi(1, &t, &P, &n_out, n_in, X, B, &Y, nthreads);
}
