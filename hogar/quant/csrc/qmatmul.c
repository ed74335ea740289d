/* Matrix products straight on GGUF quantized blocks (the llama.cpp way), for hogar.quant.linear.
 *
 * y[b, o] = sum_k W[o, k] x[b, k] with W in a GGUF block encoding (read in place, e.g. from the mmap) and x float32.
 *
 * Activations are quantized first, as llama.cpp does: to Q8_0 blocks (32 values, f16 scale) for Q4_0/Q5_0/Q8_0 and
 * IQ4_NL weights, to Q8_1 (also the f16 sum d * sum(q)) for Q4_1/Q5_1, and to Q8_K (256 values, f32 scale, 16-value
 * sums) for the K-quants.  Then every weight row is unpacked, in a thread-local buffer that stays in L1, into one
 * common form: unsigned 8-bit values u in groups of G (32, or 16 for Q2_K/Q3_K/Q6_K) with a float scale sw and a
 * float offset mw per group (the weight is sw * u + mw; the signed types use u = q + offset, mw = -offset * sw, IQ4_NL
 * u = level + 127).  The product of one group with activation group (int8 a, scale sa, sa * sum(a) = S) is then
 *     sw * sa * (u . a) + mw * S
 * with u . a an exact integer (AVX-512 VNNI vpdpbusd: unsigned x signed bytes; on AVX2 its emulation dp4).
 *
 * Plain C with OpenMP; AVX-512 (F/BW/VL/VNNI) or AVX2 (+ FMA, F16C) intrinsics when compiled for a CPU that has
 * them (-march=native), portable scalar code otherwise: the same results from all three.  Called through ctypes
 * (see hogar/quant/kernels.py).
 */
#ifdef _OPENMP
#include <omp.h>
#endif

#include "quant_common.h"

static void quant_row_q8k(const float *x, int64_t n, int G, int8_t *q, float *sa, float *S) {
    const int gpb = 256 / G;
    for (int64_t i = 0; i < n / 256; i++) {
        const float *xb = x + 256 * i;
        int8_t *qb = q + 256 * i;
        float max = 0.f, amax = 0.f;
        for (int j = 0; j < 256; j++) {
            float ax = fabsf(xb[j]);
            if (ax > amax) { amax = ax; max = xb[j]; }
        }
        if (amax == 0.f) {
            memset(qb, 0, 256);
            for (int g = 0; g < gpb; g++) { sa[i * gpb + g] = 0.f; S[i * gpb + g] = 0.f; }
            continue;
        }
        const float iscale = -127.f / max, d = 1.f / iscale;
        for (int j = 0; j < 256; j++) {
            int v = nearest_int(iscale * xb[j]);
            qb[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int g = 0; g < gpb; g++) {
            int s = 0;
            for (int j = 0; j < G; j++) s += qb[g * G + j];
            sa[i * gpb + g] = d;
            S[i * gpb + g] = d * (float)s;
        }
    }
}

/* ---- weight row unpacking: row of nb blocks -> u[nb * block], sw[ngroups], mw[ngroups] -------------------- */

static inline void nibbles16(const uint8_t *qs, uint8_t *lo, uint8_t *hi) {
#ifdef HQ_SIMD
    __m128i v = _mm_loadu_si128((const __m128i *)qs), m = _mm_set1_epi8(0x0F);
    _mm_storeu_si128((__m128i *)lo, _mm_and_si128(v, m));
    _mm_storeu_si128((__m128i *)hi, _mm_and_si128(_mm_srli_epi16(v, 4), m));
#else
    for (int j = 0; j < 16; j++) { lo[j] = qs[j] & 15; hi[j] = qs[j] >> 4; }
#endif
}

static inline void nibbles32(const uint8_t *qs, uint8_t *lo, uint8_t *hi) {
#ifdef HQ_SIMD
    __m256i v = _mm256_loadu_si256((const __m256i *)qs), m = _mm256_set1_epi8(0x0F);
    _mm256_storeu_si256((__m256i *)lo, _mm256_and_si256(v, m));
    _mm256_storeu_si256((__m256i *)hi, _mm256_and_si256(_mm256_srli_epi16(v, 4), m));
#else
    for (int j = 0; j < 32; j++) { lo[j] = qs[j] & 15; hi[j] = qs[j] >> 4; }
#endif
}

/* IQ4_NL: the 16 bytes of nibbles -> unsigned levels u = w + 127 of values 0..15 (lo) and 16..31 (hi) */
static inline void iq4nl16(const uint8_t *qs, uint8_t *lo, uint8_t *hi) {
#ifdef HQ_SIMD
    const __m128i v = _mm_loadu_si128((const __m128i *)qs), m = _mm_set1_epi8(0x0F);
    const __m128i lut = _mm_loadu_si128((const __m128i *)IQ4NL_U);
    _mm_storeu_si128((__m128i *)lo, _mm_shuffle_epi8(lut, _mm_and_si128(v, m)));
    _mm_storeu_si128((__m128i *)hi, _mm_shuffle_epi8(lut, _mm_and_si128(_mm_srli_epi16(v, 4), m)));
#else
    for (int j = 0; j < 16; j++) { lo[j] = IQ4NL_U[qs[j] & 15]; hi[j] = IQ4NL_U[qs[j] >> 4]; }
#endif
}

/* add 16 to byte e of u[0..32) where bit e of the 32-bit mask is set */
static inline void fifth_bits32(uint8_t *u, uint32_t qh) {
#ifdef HQ_SIMD
    _mm256_storeu_si256((__m256i *)u, add_fifth(_mm256_loadu_si256((const __m256i *)u), qh));
#else
    for (int j = 0; j < 32; j++) u[j] |= ((qh >> j) & 1) << 4;
#endif
}

/* Q5_0 / Q5_1: 16 bytes of nibbles and the 32 fifth bits -> u[0..32) */
static inline void nibbles16_5(const uint8_t *qs, uint32_t qh, uint8_t *u) {
#ifdef HQ_SIMD
    const __m128i v = _mm_loadu_si128((const __m128i *)qs), m = _mm_set1_epi8(0x0F);
    const __m256i lohi = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
    _mm256_storeu_si256((__m256i *)u, add_fifth(lohi, qh));
#else
    nibbles16(qs, u, u + 16);
    fifth_bits32(u, qh);
#endif
}

static void unpack_row(int t, const uint8_t *r, int64_t nb, uint8_t *u, float *sw, float *mw) {
    switch (t) {
    case T_Q4_0:
        for (int64_t i = 0; i < nb; i++, r += 18, u += 32) {
            const float d = h2f(r);
            sw[i] = d; mw[i] = -8.f * d;
            nibbles16(r + 2, u, u + 16);
        }
        break;
    case T_Q4_1:
        for (int64_t i = 0; i < nb; i++, r += 20, u += 32) {
            sw[i] = h2f(r); mw[i] = h2f(r + 2);
            nibbles16(r + 4, u, u + 16);
        }
        break;
    case T_Q5_0:
        for (int64_t i = 0; i < nb; i++, r += 22, u += 32) {
            const float d = h2f(r);
            uint32_t qh; memcpy(&qh, r + 2, 4);
            sw[i] = d; mw[i] = -16.f * d;
            nibbles16_5(r + 6, qh, u);
        }
        break;
    case T_Q5_1:
        for (int64_t i = 0; i < nb; i++, r += 24, u += 32) {
            uint32_t qh; memcpy(&qh, r + 4, 4);
            sw[i] = h2f(r); mw[i] = h2f(r + 2);
            nibbles16_5(r + 8, qh, u);
        }
        break;
    case T_IQ4_NL:
        for (int64_t i = 0; i < nb; i++, r += 18, u += 32) {
            const float d = h2f(r);
            sw[i] = d; mw[i] = -127.f * d;
            iq4nl16(r + 2, u, u + 16);
        }
        break;
    case T_Q8_0:
        for (int64_t i = 0; i < nb; i++, r += 34, u += 32) {
            const float d = h2f(r);
            sw[i] = d; mw[i] = -128.f * d;
#ifdef HQ_SIMD
            __m256i v = _mm256_loadu_si256((const __m256i *)(r + 2));
            _mm256_storeu_si256((__m256i *)u, _mm256_xor_si256(v, _mm256_set1_epi8((char)0x80)));
#else
            for (int j = 0; j < 32; j++) u[j] = r[2 + j] ^ 0x80;
#endif
        }
        break;
    case T_Q4_K:
    case T_Q5_K: {
        const int five = t == T_Q5_K, bs = five ? 176 : 144;
        for (int64_t i = 0; i < nb; i++, r += bs, u += 256, sw += 8, mw += 8) {
            const float d = h2f(r), dmin = h2f(r + 2);
            const uint8_t *sc = r + 4, *qh = r + 16, *qs = r + (five ? 48 : 16);
            for (int j = 0; j < 8; j++) {
                int s, m;
                if (j < 4) { s = sc[j] & 63; m = sc[j + 4] & 63; }
                else { s = (sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4); m = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4); }
                sw[j] = d * (float)s; mw[j] = -(dmin * (float)m);
            }
            for (int j = 0; j < 4; j++) nibbles32(qs + 32 * j, u + 64 * j, u + 64 * j + 32);
            if (five) {
                for (int j = 0; j < 8; j++) {
                    uint32_t bits = 0;
                    for (int l = 0; l < 32; l++) bits |= (uint32_t)((qh[l] >> j) & 1) << l;
                    fifth_bits32(u + 32 * j, bits);
                }
            }
        }
        break;
    }
    case T_Q6_K:
        for (int64_t i = 0; i < nb; i++, r += 210, u += 256, sw += 16, mw += 16) {
            const uint8_t *ql = r, *qh = r + 128;
            const int8_t *sc = (const int8_t *)(r + 192);
            const float d = h2f(r + 208);
            for (int g = 0; g < 16; g++) { sw[g] = d * (float)sc[g]; mw[g] = -32.f * sw[g]; }
            for (int n = 0; n < 2; n++) {
                const uint8_t *l8 = ql + 64 * n, *h8 = qh + 32 * n;
                uint8_t *o = u + 128 * n;
#ifdef HQ_SIMD
                const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
                __m256i a = _mm256_loadu_si256((const __m256i *)l8), b = _mm256_loadu_si256((const __m256i *)(l8 + 32));
                __m256i h = _mm256_loadu_si256((const __m256i *)h8);
                __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(h, m3), 4);
                __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m3), 4);
                __m256i h2 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m3), 4);
                __m256i h3 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m3), 4);
                _mm256_storeu_si256((__m256i *)o, _mm256_or_si256(_mm256_and_si256(a, m4), h0));
                _mm256_storeu_si256((__m256i *)(o + 32), _mm256_or_si256(_mm256_and_si256(b, m4), h1));
                _mm256_storeu_si256((__m256i *)(o + 64), _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), m4), h2));
                _mm256_storeu_si256((__m256i *)(o + 96), _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b, 4), m4), h3));
#else
                for (int l = 0; l < 32; l++) {
                    o[l] = (l8[l] & 0xF) | ((h8[l] & 3) << 4);
                    o[l + 32] = (l8[l + 32] & 0xF) | (((h8[l] >> 2) & 3) << 4);
                    o[l + 64] = (l8[l] >> 4) | (((h8[l] >> 4) & 3) << 4);
                    o[l + 96] = (l8[l + 32] >> 4) | (((h8[l] >> 6) & 3) << 4);
                }
#endif
            }
        }
        break;
    case T_Q2_K:
        for (int64_t i = 0; i < nb; i++, r += 84, u += 256, sw += 16, mw += 16) {
            const uint8_t *sc = r, *qs = r + 16;
            const float d = h2f(r + 80), dmin = h2f(r + 82);
            for (int g = 0; g < 16; g++) { sw[g] = d * (float)(sc[g] & 0xF); mw[g] = -(dmin * (float)(sc[g] >> 4)); }
            for (int n = 0; n < 2; n++)
                for (int j = 0; j < 4; j++)
                    for (int l = 0; l < 32; l++) u[128 * n + 32 * j + l] = (qs[32 * n + l] >> (2 * j)) & 3;
        }
        break;
    case T_Q3_K:
        for (int64_t i = 0; i < nb; i++, r += 110, u += 256, sw += 16, mw += 16) {
            const uint8_t *hm = r, *qs = r + 32;
            const float d = h2f(r + 108);
            uint32_t aux[4];
            memcpy(aux, r + 96, 12);
            const uint32_t k1 = 0x03030303u, k2 = 0x0f0f0f0fu, tmp = aux[2];
            aux[2] = ((aux[0] >> 4) & k2) | (((tmp >> 4) & k1) << 4);
            aux[3] = ((aux[1] >> 4) & k2) | (((tmp >> 6) & k1) << 4);
            aux[0] = (aux[0] & k2) | (((tmp >> 0) & k1) << 4);
            aux[1] = (aux[1] & k2) | (((tmp >> 2) & k1) << 4);
            const int8_t *sc = (const int8_t *)aux;
            for (int g = 0; g < 16; g++) { sw[g] = d * (float)(sc[g] - 32); mw[g] = -4.f * sw[g]; }
            for (int n = 0; n < 2; n++)
                for (int j = 0; j < 4; j++) {
                    const int m = 1 << (4 * n + j);
                    for (int l = 0; l < 32; l++)
                        u[128 * n + 32 * j + l] = ((qs[32 * n + l] >> (2 * j)) & 3) | ((hm[l] & m) ? 4 : 0);
                }
        }
        break;
    }
}

/* ---- the dot product of one unpacked weight row with one quantized activation row ------------------------- */

#ifdef HQ_AVX512
static __m512i IDX32[8], IDX16[4];
__attribute__((constructor)) static void init_idx(void) {
    for (int j = 0; j < 8; j++) {
        int v[16];
        for (int l = 0; l < 16; l++) v[l] = 2 * j + l / 8;
        IDX32[j] = _mm512_loadu_si512(v);
    }
    for (int j = 0; j < 4; j++) {
        int v[16];
        for (int l = 0; l < 16; l++) v[l] = 4 * j + l / 4;
        IDX16[j] = _mm512_loadu_si512(v);
    }
}
#endif

/* ng groups of G; u and a readable up to a multiple of 64 bytes past the last group */
static inline float dot_row(const uint8_t *u, const float *sw, const float *mw, const int8_t *a, const float *sa,
                            const float *S, int64_t ng, int G) {
#ifdef HQ_AVX512
    __m512 acc = _mm512_setzero_ps(), accm = _mm512_setzero_ps();
    const __m512i zero = _mm512_setzero_si512();
    for (int64_t g0 = 0; g0 < ng; g0 += 16) {
        const int64_t rem = ng - g0;
        __m512 c, m, s;
        int steps;
        if (rem >= 16) {
            c = _mm512_mul_ps(_mm512_loadu_ps(sw + g0), _mm512_loadu_ps(sa + g0));
            m = _mm512_loadu_ps(mw + g0); s = _mm512_loadu_ps(S + g0);
            steps = 16 * G / 64;
        } else {
            const __mmask16 k = (__mmask16)((1u << rem) - 1);
            c = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, sw + g0), _mm512_maskz_loadu_ps(k, sa + g0));
            m = _mm512_maskz_loadu_ps(k, mw + g0); s = _mm512_maskz_loadu_ps(k, S + g0);
            steps = (int)((rem * G + 63) / 64);
        }
        accm = _mm512_fmadd_ps(m, s, accm);
        const uint8_t *up = u + g0 * G;
        const int8_t *ap = a + g0 * G;
        if (G == 32) {
            for (int j = 0; j < steps; j++) {
                __m512i vi = _mm512_dpbusd_epi32(zero, _mm512_loadu_si512(up + 64 * j), _mm512_loadu_si512(ap + 64 * j));
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(vi), _mm512_permutexvar_ps(IDX32[j], c), acc);
            }
        } else {
            for (int j = 0; j < steps; j++) {
                __m512i vi = _mm512_dpbusd_epi32(zero, _mm512_loadu_si512(up + 64 * j), _mm512_loadu_si512(ap + 64 * j));
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(vi), _mm512_permutexvar_ps(IDX16[j], c), acc);
            }
        }
    }
    return _mm512_reduce_add_ps(acc) + _mm512_reduce_add_ps(accm);
#else
    float acc = 0.f, accm = 0.f;
    for (int64_t g = 0; g < ng; g++) {
        int32_t s = 0;
        for (int k = 0; k < G; k++) s += (int32_t)u[g * G + k] * (int32_t)a[g * G + k];
        acc += sw[g] * sa[g] * (float)s;
        accm += mw[g] * S[g];
    }
    return acc + accm;
#endif
}

static inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/* ---- block-32 types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0): llama.cpp's exact float arithmetic --------------------- */
/* llama.cpp (x86 AVX2/AVX-512 build; ggml_vec_dot_*_q8_0/q8_1 for one activation row, llamafile's tinyBLAS_Q0_AVX
 * for more: the same arithmetic) keeps an 8-lane f32 accumulator; lane j gets, block after block,
 *     acc[j] = fma(d_w * d_x, sum_{e = 4j..4j+3} w[e] x[e], acc[j])
 * (d_w * d_x: f16 values, their product exact in f32; the integer sums exact), then reduces it as hsum_float_8:
 * r = acc[4..8) + acc[0..4), (r0 + r2) + (r1 + r3); Q4_1/Q5_1 then add `summs`, a sequential f32 sum over the
 * blocks of m_w * s_x.  We compute the lane sums of the unsigned unpacked u (= w + off) with vpdpbusd started from
 * -off * (the 4-sums of x), i.e. exactly sum w x, and then do the same float operations in the same order. */

static inline float hsum8_ref(const float *a) {
    const float r0 = a[4] + a[0], r1 = a[5] + a[1], r2 = a[6] + a[2], r3 = a[7] + a[3];
    return (r0 + r2) + (r1 + r3);
}

#ifdef HQ_SIMD
static inline float hsum8(__m256 x) {
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

/* R unpacked weight rows x C activation rows; out[r * ldo + c] */
static inline __attribute__((always_inline)) void tile32(const int wide, const int R, const int C, const uint8_t *u,
        int64_t ustride, const float *sw, const float *mw, int64_t wstride, const int8_t *a, int64_t astride,
        const float *sa, const float *S, int64_t sstride, const float *St, const int32_t *corr, int64_t cstride,
        int64_t nb, int has_m, float *out, int64_t ldo) {
    __m256 acc[4][4];
    float summs[4][4];
    __m128 summs4[4];
    for (int r = 0; r < R; r++) {
        summs4[r] = _mm_setzero_ps();
        for (int c = 0; c < C; c++) { acc[r][c] = _mm256_setzero_ps(); summs[r][c] = 0.f; }
    }
    for (int64_t g = 0; g < nb; g++) {
        __m256i av[4], iv[4];
        __m256 dx[4];
        for (int c = 0; c < C; c++) {
            av[c] = _mm256_load_si256((const __m256i *)(a + c * astride + 32 * g));
            iv[c] = corr ? _mm256_load_si256((const __m256i *)(corr + c * cstride + 8 * g)) : _mm256_setzero_si256();
            dx[c] = _mm256_set1_ps(sa[c * sstride + g]);
        }
        for (int r = 0; r < R; r++) {
            const __m256i uv = _mm256_load_si256((const __m256i *)(u + r * ustride + 32 * g));
            const __m256 dw = _mm256_set1_ps(sw[r * wstride + g]);
            for (int c = 0; c < C; c++) {
                const __m256 p = _mm256_cvtepi32_ps(dp4(iv[c], uv, av[c], wide));
                acc[r][c] = _mm256_fmadd_ps(_mm256_mul_ps(dw, dx[c]), p, acc[r][c]);
                if (has_m && C != 4) summs[r][c] += mw[r * wstride + g] * S[c * sstride + g];
            }
            /* m_w * s_x is exact (two f16 values), so the fused multiply-add rounds as the add alone */
            if (has_m && C == 4)
                summs4[r] = _mm_fmadd_ps(_mm_set1_ps(mw[r * wstride + g]), _mm_load_ps(St + 4 * g), summs4[r]);
        }
    }
    for (int r = 0; r < R; r++) {
        if (has_m && C == 4) _mm_storeu_ps(summs[r], summs4[r]);
        for (int c = 0; c < C; c++) {
            const float h = hsum8(acc[r][c]);
            out[r * ldo + c] = has_m ? h + summs[r][c] : h;
        }
    }
}

/* nr (<= 4) weight rows x nc (4 or 1) activation rows -> tmp[r * 4 + c] */
static inline __attribute__((always_inline)) void tiles32(const int wide, int64_t nr, int64_t nc, const uint8_t *u,
        const float *swb, const float *mwb, const int8_t *ap, const float *sap, const float *Sp, const float *Stp,
        const int32_t *cp, int64_t qstride, int64_t gstride, int64_t cstride, int64_t nb, int has_m, float *tmp) {
    if (nr == 4 && nc == 4)
        tile32(wide, 4, 4, u, qstride, swb, mwb, gstride, ap, qstride, sap, Sp, gstride, Stp, cp, cstride, nb, has_m,
               tmp, 4);
    else if (nr == 4)
        tile32(wide, 4, 1, u, qstride, swb, mwb, gstride, ap, qstride, sap, Sp, gstride, NULL, cp, cstride, nb, has_m,
               tmp, 4);
    else
        for (int64_t r = 0; r < nr; r++)
            for (int64_t c = 0; c < nc; c++)
                tile32(wide, 1, 1, u + r * qstride, qstride, swb + r * gstride, mwb + r * gstride, gstride,
                       ap + c * qstride, qstride, sap + c * gstride, Sp + c * gstride, gstride, NULL,
                       cp ? cp + c * cstride : NULL, cstride, nb, has_m, tmp + r * 4 + c, 4);
}
#endif

/* portable version of the same arithmetic (also the definition the SIMD one must agree with) */
static __attribute__((unused)) void dot32_ref(const uint8_t *u, const float *sw, const float *mw, const int8_t *a, const float *sa,
                      const float *S, const int32_t *corr, int64_t nb, int has_m, float *out) {
    float acc[8] = {0}, summs = 0.f;
    for (int64_t g = 0; g < nb; g++) {
        const float d = sw[g] * sa[g];
        for (int j = 0; j < 8; j++) {
            int32_t s = corr ? corr[8 * g + j] : 0;
            for (int e = 4 * j; e < 4 * j + 4; e++) s += (int32_t)u[32 * g + e] * (int32_t)a[32 * g + e];
            acc[j] = fmaf(d, (float)s, acc[j]);
        }
        if (has_m) summs += mw[g] * S[g];
    }
    const float h = hsum8_ref(acc);
    *out = has_m ? h + summs : h;
}

static int weight_offset(int t) {
    switch (t) {
    case T_Q4_0: return 8;
    case T_Q5_0: return 16;
    case T_Q8_0: return 128;
    case T_IQ4_NL: return 127;
    default: return 0;
    }
}

/* Y[B, n_out] for the block-32 types */
static int matmul32(int t, const uint8_t *W, int64_t n_out, int64_t n_in, const float *X, int64_t B, float *Y,
                    int nthreads, const qinfo *qi) {
    const int64_t nb = n_in / 32, row_bytes = nb * qi->size;
    const int off = dp4_off(weight_offset(t)), has_m = qi->amode == 1;
    const int64_t qstride = round_up(n_in, 64), gstride = round_up(nb, 16), cstride = round_up(n_in / 4, 16);
    int8_t *qa = (int8_t *)aligned_alloc(64, (size_t)(B * qstride));
    float *sa = (float *)aligned_alloc(64, (size_t)(B * gstride) * sizeof(float));
    float *S = (float *)aligned_alloc(64, (size_t)(B * gstride) * sizeof(float));
    int32_t *corr = off ? (int32_t *)aligned_alloc(64, (size_t)(B * cstride) * sizeof(int32_t)) : NULL;
    /* St: S of each group of 4 activation rows, transposed ([B / 4][nb][4]) for the 4-row tiles */
    float *St = has_m ? (float *)aligned_alloc(64, (size_t)((B / 4 + 1) * gstride * 4) * sizeof(float)) : NULL;
    if (!qa || !sa || !S || (off && !corr) || (has_m && !St)) {
        free(qa); free(sa); free(S); free(corr); free(St); return 2;
    }
    enum { RT = 4, CT = 4 };
    const int64_t BC = 64; /* activation rows per pass over the weights */
    int err = 0;
#pragma omp parallel num_threads(nthreads)
    {
#pragma omp for schedule(static)
        for (int64_t b = 0; b < B; b++) {
            quant_row_q8(X + b * n_in, n_in, qi->amode, qa + b * qstride, sa + b * gstride, S + b * gstride);
            if (off) {
                const int8_t *q = qa + b * qstride;
                int32_t *c = corr + b * cstride;
                for (int64_t k = 0; k < n_in / 4; k++)
                    c[k] = -off * ((int32_t)q[4 * k] + q[4 * k + 1] + q[4 * k + 2] + q[4 * k + 3]);
            }
        }
        if (has_m) {
#pragma omp for schedule(static)
            for (int64_t b4 = 0; b4 < B / 4; b4++)
                for (int64_t g = 0; g < nb; g++)
                    for (int c = 0; c < 4; c++) St[(b4 * gstride + g) * 4 + c] = S[(4 * b4 + c) * gstride + g];
        }
        uint8_t *u = (uint8_t *)aligned_alloc(64, (size_t)(RT * qstride));
        float *swb = (float *)aligned_alloc(64, (size_t)(RT * gstride) * sizeof(float));
        float *mwb = (float *)aligned_alloc(64, (size_t)(RT * gstride) * sizeof(float));
        float *tmp = (float *)aligned_alloc(64, 64 * sizeof(float));
        const int ok = u && swb && mwb && tmp;
        if (!ok) {
#pragma omp atomic write
            err = 2;
        }
        const int64_t ntiles = (n_out + RT - 1) / RT;
        for (int64_t b0 = 0; b0 < B; b0 += BC) {
            const int64_t b1 = b0 + BC < B ? b0 + BC : B;
#pragma omp for schedule(static)
            for (int64_t ti = 0; ti < ntiles; ti++) {
                if (!ok) continue;
                const int64_t o0 = ti * RT, nr = n_out - o0 < RT ? n_out - o0 : RT;
                for (int64_t r = 0; r < nr; r++)
                    unpack_row(t, W + (o0 + r) * row_bytes, nb, u + r * qstride, swb + r * gstride, mwb + r * gstride);
                for (int64_t b = b0; b < b1;) {
                    const int64_t nc = b1 - b >= CT ? CT : 1;
                    const int8_t *ap = qa + b * qstride;
                    const float *sap = sa + b * gstride, *Sp = S + b * gstride;
                    const int32_t *cp = off ? corr + b * cstride : NULL;
                    const float *Stp = has_m && nc == CT ? St + b / 4 * gstride * 4 : NULL;
#ifdef HQ_SIMD
                    if (weight_offset(t) > 64) /* wide: see dp4 */
                        tiles32(1, nr, nc, u, swb, mwb, ap, sap, Sp, Stp, cp, qstride, gstride, cstride, nb, has_m,
                                tmp);
                    else
                        tiles32(0, nr, nc, u, swb, mwb, ap, sap, Sp, Stp, cp, qstride, gstride, cstride, nb, has_m,
                                tmp);
#else
                    for (int64_t r = 0; r < nr; r++)
                        for (int64_t c = 0; c < nc; c++)
                            dot32_ref(u + r * qstride, swb + r * gstride, mwb + r * gstride, ap + c * qstride,
                                      sap + c * gstride, Sp + c * gstride, cp ? cp + c * cstride : NULL, nb, has_m,
                                      tmp + r * CT + c);
#endif
                    for (int64_t r = 0; r < nr; r++)
                        for (int64_t c = 0; c < nc; c++) Y[(b + c) * n_out + o0 + r] = tmp[r * CT + c];
                    b += nc;
                }
            }
        }
        free(u); free(swb); free(mwb); free(tmp);
    }
    free(qa); free(sa); free(S); free(corr); free(St);
    return err;
}

/* ---- Q4_K and Q6_K: llama.cpp's exact float arithmetic --------------------------------------------------- */
/* Q4_K (x86: repacked as q4_K_8x8 when n_out % 8 == 0): activation rows in whole groups of 4 go through
 * ggml_gemm_q4_K_8x8_q8_K, with Q8_K quantized by ggml_quantize_mat_q8_K_4x8 (the sign of the scale follows "some
 * positive value reaches max|x|"); per 64 values (two 32-sub-blocks, sb) isum = sc0 * dot0 + sc1 * dot1 and
 * imin = m0 * bsum0 + m1 * bsum1 (integers), acc = fma((float)isum, d_w * d_x, acc), accm = fma((float)imin,
 * dmin_w * d_x, accm); out = acc - accm.  The remaining B % 4 rows (and B < 4) go through ggml_gemv_q4_K_8x8_q8_K
 * (Q8_K by quantize_row_q8_K_ref): the same per 256-value super-block instead of per 64.
 * Q6_K (never repacked on x86): ggml_vec_dot_q6_K_q8_K, 8 integer lanes per super-block: lane l sums
 * sc[group] * u * x over the 4-byte column l of each 32-value chunk, minus 32 * (sc[2l] bsum[2l] + sc[2l+1]
 * bsum[2l+1]); acc[l] = fma(d_x * d_w, (float)lane, acc[l]); hsum_float_8. */

typedef struct { int32_t sc[8], mn[8]; float d, dmin; } k4meta;

static void k4_meta_row(const uint8_t *r, int64_t nsb, k4meta *m) {
    for (int64_t i = 0; i < nsb; i++, r += 144) {
        const uint8_t *sc = r + 4;
        m[i].d = h2f(r); m[i].dmin = h2f(r + 2);
        for (int j = 0; j < 8; j++) {
            if (j < 4) { m[i].sc[j] = sc[j] & 63; m[i].mn[j] = sc[j + 4] & 63; }
            else { m[i].sc[j] = (sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4); m[i].mn[j] = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4); }
        }
    }
}

/* the 8 sub-block dot products (32 values each) of one super-block: u unsigned, a signed */
static inline __attribute__((always_inline)) void dots8(const uint8_t *u, const int8_t *a, int32_t *dot,
                                                        const int wide) {
#ifdef HQ_SIMD
    __m256i v[8];
    for (int j = 0; j < 8; j++)
        v[j] = dp4(_mm256_setzero_si256(), _mm256_load_si256((const __m256i *)(u + 32 * j)),
                   _mm256_load_si256((const __m256i *)(a + 32 * j)), wide);
    __m256i t0 = _mm256_hadd_epi32(v[0], v[1]), t1 = _mm256_hadd_epi32(v[2], v[3]);
    __m256i t2 = _mm256_hadd_epi32(v[4], v[5]), t3 = _mm256_hadd_epi32(v[6], v[7]);
    t0 = _mm256_hadd_epi32(t0, t1); t2 = _mm256_hadd_epi32(t2, t3);
    const __m256i r = _mm256_add_epi32(_mm256_permute2x128_si256(t0, t2, 0x20), _mm256_permute2x128_si256(t0, t2, 0x31));
    _mm256_storeu_si256((__m256i *)dot, r);
#else
    (void)wide;
    for (int j = 0; j < 8; j++) {
        int32_t s = 0;
        for (int e = 0; e < 32; e++) s += (int32_t)u[32 * j + e] * a[32 * j + e];
        dot[j] = s;
    }
#endif
}

static float dot_q4k_exact(const uint8_t *u, const k4meta *m, const int8_t *a, const float *dx, const int32_t *bs32,
                           int64_t nsb, int gemm) {
    float acc = 0.f, accm = 0.f;
    int32_t dot[8];
    for (int64_t i = 0; i < nsb; i++) {
        dots8(u + 256 * i, a + 256 * i, dot, 0);
        const int32_t *sc = m[i].sc, *mn = m[i].mn, *bs = bs32 + 8 * i;
        const float dd = m[i].d * dx[i], dm = m[i].dmin * dx[i];
        if (gemm) {
            for (int sb = 0; sb < 4; sb++) {
                const int32_t is = sc[2 * sb] * dot[2 * sb] + sc[2 * sb + 1] * dot[2 * sb + 1];
                const int32_t im = mn[2 * sb] * bs[2 * sb] + mn[2 * sb + 1] * bs[2 * sb + 1];
                acc = fmaf((float)is, dd, acc);
                accm = fmaf((float)im, dm, accm);
            }
        } else {
            int32_t is = 0, im = 0;
            for (int j = 0; j < 8; j++) { is += sc[j] * dot[j]; im += mn[j] * bs[j]; }
            acc = fmaf((float)is, dd, acc);
            accm = fmaf((float)im, dm, accm);
        }
    }
    return acc - accm;
}

/* u: Q6_K values 0..63 in element order; r: the raw row (scales at +192, d at +208 of each 210-byte block) */
static float dot_q6k_exact(const uint8_t *u, const uint8_t *r, const int8_t *a, const float *dx, const int16_t *bs16,
                           int64_t nsb, int tiled) {
    float acc[8] = {0}, tacc = 0.f;
    for (int64_t i = 0; i < nsb; i++, r += 210) {
        const int8_t *sc = (const int8_t *)(r + 192);
        const float d = dx[i] * h2f(r + 208);
        int32_t lane[8];
#ifdef HQ_SIMD
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 8; c++) {
            const __m256i p = dp4(_mm256_setzero_si256(), _mm256_load_si256((const __m256i *)(u + 256 * i + 32 * c)),
                                  _mm256_load_si256((const __m256i *)(a + 256 * i + 32 * c)), 0);
            const __m256i s = _mm256_setr_epi32(sc[2 * c], sc[2 * c], sc[2 * c], sc[2 * c], sc[2 * c + 1],
                                                sc[2 * c + 1], sc[2 * c + 1], sc[2 * c + 1]);
            sumi = _mm256_add_epi32(sumi, _mm256_mullo_epi32(p, s));
        }
        const __m256i bsv = _mm256_loadu_si256((const __m256i *)(bs16 + 16 * i));
        const __m256i scv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
        sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(_mm256_madd_epi16(bsv, scv), 5));
        _mm256_storeu_si256((__m256i *)lane, sumi);
#else
        for (int l = 0; l < 8; l++) {
            int32_t s = 0;
            for (int c = 0; c < 8; c++)
                for (int e = 4 * l; e < 4 * l + 4; e++)
                    s += sc[2 * c + (l >= 4)] * (int32_t)u[256 * i + 32 * c + e] * a[256 * i + 32 * c + e];
            lane[l] = s - 32 * (sc[2 * l] * bs16[16 * i + 2 * l] + sc[2 * l + 1] * bs16[16 * i + 2 * l + 1]);
        }
#endif
        if (tiled) { /* ggml-cpu/tiled (VNNI microkernel): one integer per super-block, then
                      * buf = fma((float)s1 * d_w, d_x, buf) (GCC contracts its mul + add into an FMA) */
            int32_t s1 = 0;
            for (int l = 0; l < 8; l++) s1 += lane[l];
            tacc = fmaf((float)s1 * h2f(r + 208), dx[i], tacc);
            continue;
        }
        for (int l = 0; l < 8; l++) acc[l] = fmaf(d, (float)lane[l], acc[l]);
    }
    return tiled ? tacc : hsum8_ref(acc);
}

static int matmul_k_exact(int t, const uint8_t *W, int64_t n_out, int64_t n_in, const float *X, int64_t B, float *Y,
                          int nthreads, const qinfo *qi, int rows_alone) {
    const int64_t nsb = n_in / 256, row_bytes = nsb * qi->size;
    const int64_t B4 = rows_alone ? 0 : B - B % 4; /* Q4_K: rows [0, B4) as llama.cpp's gemm, the rest as its gemv */
    int8_t *qa = (int8_t *)aligned_alloc(64, (size_t)(B * n_in));
    float *dx = (float *)malloc((size_t)(B * nsb) * sizeof(float));
    int32_t *bs32 = (int32_t *)malloc((size_t)(B * nsb * 8) * sizeof(int32_t));
    int16_t *bs16 = (int16_t *)malloc((size_t)(B * nsb * 16) * sizeof(int16_t));
    if (!qa || !dx || !bs32 || !bs16) { free(qa); free(dx); free(bs32); free(bs16); return 2; }
    const int64_t BC = 64;
    int err = 0;
#pragma omp parallel num_threads(nthreads)
    {
#pragma omp for schedule(static)
        for (int64_t b = 0; b < B; b++)
            quant_row_q8k_exact(X + b * n_in, n_in, t == T_Q4_K && b < B4, qa + b * n_in, dx + b * nsb,
                                bs32 + b * nsb * 8, bs16 + b * nsb * 16);
        uint8_t *u = (uint8_t *)aligned_alloc(64, (size_t)n_in);
        float *swb = (float *)malloc((size_t)(n_in / 16) * sizeof(float));
        float *mwb = (float *)malloc((size_t)(n_in / 16) * sizeof(float));
        k4meta *meta = (k4meta *)malloc((size_t)nsb * sizeof(k4meta));
        const int ok = u && swb && mwb && meta;
        if (!ok) {
#pragma omp atomic write
            err = 2;
        }
        for (int64_t b0 = 0; b0 < B; b0 += BC) {
            const int64_t b1 = b0 + BC < B ? b0 + BC : B;
#pragma omp for schedule(static)
            for (int64_t o = 0; o < n_out; o++) {
                if (!ok) continue;
                const uint8_t *r = W + o * row_bytes;
                unpack_row(t, r, nsb, u, swb, mwb);
                if (t == T_Q4_K) {
                    k4_meta_row(r, nsb, meta);
                    for (int64_t b = b0; b < b1; b++)
                        Y[b * n_out + o] = dot_q4k_exact(u, meta, qa + b * n_in, dx + b * nsb, bs32 + b * nsb * 8,
                                                         nsb, b < B4);
                } else {
                    for (int64_t b = b0; b < b1; b++)
                        Y[b * n_out + o] = dot_q6k_exact(u, r, qa + b * n_in, dx + b * nsb, bs16 + b * nsb * 16, nsb,
                                                         B >= 8 && !rows_alone);
                }
            }
        }
        free(u); free(swb); free(mwb); free(meta);
    }
    free(qa); free(dx); free(bs32); free(bs16);
    return err;
}

/* ---- Q2_K, Q3_K, Q5_K (and Q4_K where n_out % 8 != 0): llama.cpp's exact float arithmetic ---------------- */
/* Q8_K activations.  llama.cpp's x86 CPU backend (AVX-512 build) runs, by type, shape and batch:
 *   Q2_K with n_out % 8 == 0: repacked at load (q2_K_8x8, an AVX-512 repacking); activation rows in whole groups
 *     of 4 go through ggml_gemm_q2_K_8x8_q8_K (Q8_K scale sign as ggml_quantize_mat_q8_K_4x8: quant_row_q8k_exact's
 *     pos_wins), per half super-block (128 values, 8 groups of 16) isum = sum sc_g dot_g, imin = sum mn_g bsum_g,
 *     acc = fma((float)isum, d_w d_x, acc), accm = fma((float)imin, dmin_w d_x, accm); out = acc - accm.  The other
 *     B % 4 rows (and B < 4): ggml_gemv_q2_K_8x8_q8_K, the same once per super-block.
 *   otherwise, 8 or more activation rows: the tiled K-quant matmul (ggml-cpu/tiled, VNNI microkernel): per
 *     super-block the integers s1 = sum_g sc_g dot_g (Q3_K: sc - 32 and weights q - 4) and s2 = sum_g mn_g bsum_g,
 *     r = (float)s1 * d_w, r = fma(-dmin_w, (float)s2, r) (Q2_K, Q5_K), acc = fma(r, d_x, acc).
 *   otherwise ggml_vec_dot_q{2,3,5}_K_q8_K (their AVX2 code): 8 integer lanes per super-block, lane l = sum over
 *     the 8 chunks c of 32 values of scale(c, l) x (the 4-product sum of values 4l..4l+3 of chunk c), scale(c, l) =
 *     sc[2c + (l >= 4)] (Q2_K, Q3_K: groups of 16) or sc[c] (Q5_K); acc[l] = fma(d_x d_w, (float)lane, acc[l]);
 *     Q2_K first acc[l] = fma(-d_x dmin_w, (float)(mn[2l] bsum[2l] + mn[2l+1] bsum[2l+1]), acc[l]); hsum_float_8;
 *     Q5_K adds summs, summs = fma(-d_x dmin_w, (float)sum_j mn_j bsum32_j, summs) super-block after super-block;
 *     Q4_K (not repacked when n_out % 8 != 0) keeps 4 min lanes, accm[k] = fma(-d_x dmin_w, (float)(mn_2k bsum32_2k
 *     + mn_2k+1 bsum32_2k+1), accm[k]), and adds (accm[0] + accm[2]) + (accm[1] + accm[3]) after hsum_float_8.
 * One integer kernel serves all three: per super-block and activation row, lo / hi = the lane sums of chunks 0-3 /
 * 4-7 and mins[l] = mn16[2l] bsum[2l] + mn16[2l+1] bsum[2l+1] (Q5_K: mn16 holds each 32-min twice).  Q3_K's
 * weights q - 4 are signed: vpdpbusd takes the unsigned q, started from -4 x the activations' 4-sums. */

typedef struct { int32_t scv[8][8]; int16_t mn16[16]; float d, dmin; } k235meta;

enum { KM_VEC = 0, KM_TILED = 1, KM_GEMV = 2, KM_GEMM = 3 };

static void k235_meta_row(int t, const uint8_t *r, int64_t nsb, k235meta *m) {
    for (int64_t i = 0; i < nsb; i++) {
        int sc[16], mn[16];
        if (t == T_Q2_K) {
            const uint8_t *b = r + 84 * i;
            for (int g = 0; g < 16; g++) { sc[g] = b[g] & 15; mn[g] = b[g] >> 4; }
            m[i].d = h2f(b + 80); m[i].dmin = h2f(b + 82);
        } else if (t == T_Q3_K) {
            const uint8_t *b = r + 110 * i, *s = b + 96;
            for (int g = 0; g < 16; g++) {
                const int lo = g < 8 ? s[g] & 15 : s[g - 8] >> 4, hi = (s[8 + g % 4] >> (2 * (g / 4))) & 3;
                sc[g] = (lo | (hi << 4)) - 32; mn[g] = 0;
            }
            m[i].d = h2f(b + 108); m[i].dmin = 0.f;
        } else { /* Q4_K, Q5_K: sc, mn per 32; spread to the 16-value layout */
            const uint8_t *b = r + (t == T_Q5_K ? 176 : 144) * i, *s = b + 4;
            for (int j = 0; j < 8; j++) {
                int a, c;
                if (j < 4) { a = s[j] & 63; c = s[j + 4] & 63; }
                else { a = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4); c = (s[j + 4] >> 4) | ((s[j] >> 6) << 4); }
                sc[2 * j] = sc[2 * j + 1] = a; mn[2 * j] = mn[2 * j + 1] = c;
            }
            m[i].d = h2f(b); m[i].dmin = h2f(b + 2);
        }
        for (int c = 0; c < 8; c++)
            for (int l = 0; l < 8; l++) m[i].scv[c][l] = t == T_Q5_K || t == T_Q4_K ? sc[2 * c] : sc[2 * c + (l >= 4)];
        for (int g = 0; g < 16; g++) m[i].mn16[g] = (int16_t)mn[g];
    }
}

/* unsigned codes of one GGUF row in element order: Q2_K 0..3, Q3_K 0..7 (the weight is q - 4), Q4_K 0..15,
 * Q5_K 0..31 */
static void k235_codes(int t, const uint8_t *r, int64_t nsb, uint8_t *u) {
    if (t == T_Q5_K || t == T_Q4_K) {
        float sw[8], mw[8];
        const int64_t bs = t == T_Q5_K ? 176 : 144;
        for (int64_t i = 0; i < nsb; i++) unpack_row(t, r + bs * i, 1, u + 256 * i, sw, mw);
        return;
    }
    for (int64_t i = 0; i < nsb; i++) {
        const uint8_t *b = r + (t == T_Q2_K ? 84 : 110) * i, *qs = b + (t == T_Q2_K ? 16 : 32), *hm = b;
        uint8_t *o = u + 256 * i;
        for (int n = 0; n < 2; n++)
            for (int j = 0; j < 4; j++) {
                uint8_t *oj = o + 128 * n + 32 * j;
#ifdef HQ_SIMD
                const __m256i v = _mm256_and_si256(_mm256_srli_epi16(_mm256_loadu_si256((const __m256i *)(qs + 32 * n)), 2 * j),
                                                   _mm256_set1_epi8(3));
                __m256i h = _mm256_setzero_si256();
                if (t == T_Q3_K) {
                    const __m256i bit = _mm256_set1_epi8((char)(1 << (4 * n + j)));
                    h = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(_mm256_loadu_si256((const __m256i *)hm), bit), bit),
                                         _mm256_set1_epi8(4));
                }
                _mm256_storeu_si256((__m256i *)oj, _mm256_or_si256(v, h));
#else
                for (int l = 0; l < 32; l++)
                    oj[l] = (uint8_t)(((qs[32 * n + l] >> (2 * j)) & 3) |
                                      (t == T_Q3_K && (hm[l] >> (4 * n + j)) & 1 ? 4 : 0));
#endif
            }
    }
}

/* the integers of one super-block (see above): lo[8], hi[8], mins[8]; c4: Q3_K's -4 x 4-sums (else NULL) */
static inline __attribute__((unused)) void k235_ints(const uint8_t *u, const int8_t *a, const int32_t *c4, const int16_t *bs16,
                             const k235meta *m, int32_t *lo, int32_t *hi, int32_t *mins) {
#ifdef HQ_SIMD
    __m256i s[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    for (int c = 0; c < 8; c++) {
        const __m256i init = c4 ? _mm256_loadu_si256((const __m256i *)(c4 + 8 * c)) : _mm256_setzero_si256();
        const __m256i p = dp4(init, _mm256_load_si256((const __m256i *)(u + 32 * c)),
                              _mm256_load_si256((const __m256i *)(a + 32 * c)), 0);
        s[c >> 2] = _mm256_add_epi32(s[c >> 2], _mm256_mullo_epi32(p, _mm256_loadu_si256((const __m256i *)m->scv[c])));
    }
    _mm256_storeu_si256((__m256i *)lo, s[0]);
    _mm256_storeu_si256((__m256i *)hi, s[1]);
    _mm256_storeu_si256((__m256i *)mins, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bs16),
                                                           _mm256_loadu_si256((const __m256i *)m->mn16)));
#else
    for (int l = 0; l < 8; l++) {
        lo[l] = hi[l] = 0;
        for (int c = 0; c < 8; c++) {
            int32_t p = c4 ? c4[8 * c + l] : 0;
            for (int e = 4 * l; e < 4 * l + 4; e++) p += (int32_t)u[32 * c + e] * a[32 * c + e];
            if (c < 4) lo[l] += p * m->scv[c][l]; else hi[l] += p * m->scv[c][l];
        }
        mins[l] = m->mn16[2 * l] * bs16[2 * l] + m->mn16[2 * l + 1] * bs16[2 * l + 1];
    }
#endif
}

#ifdef HQ_AVX512
static inline int32_t hsum_i32x8(__m256i v) {
    __m128i r = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0x4E));
    return _mm_cvtsi128_si32(_mm_add_epi32(r, _mm_shuffle_epi32(r, 0xB1)));
}

/* the same as the portable dot_k235 below, two chunks per 512-bit vector */
static float dot_k235(int t, int mode, const uint8_t *u, const k235meta *m, const int8_t *a, const int32_t *c4,
                      const float *dx, const int16_t *bs16, int64_t nsb) {
    __m256 acc = _mm256_setzero_ps();
    float summs = 0.f, tacc = 0.f, accs = 0.f, accm = 0.f, accm4[4] = {0.f, 0.f, 0.f, 0.f};
    for (int64_t i = 0; i < nsb; i++) {
        __m512i S[2];
        for (int h = 0; h < 2; h++) {
            __m512i p[2];
            for (int k = 0; k < 2; k++) {
                const int64_t off = 256 * i + 64 * (2 * h + k);
                const __m512i init = c4 ? _mm512_loadu_si512(c4 + off / 4) : _mm512_setzero_si512();
                p[k] = _mm512_mullo_epi32(_mm512_dpbusd_epi32(init, _mm512_load_si512(u + off), _mm512_load_si512(a + off)),
                                          _mm512_loadu_si512(m[i].scv[2 * (2 * h + k)]));
            }
            S[h] = _mm512_add_epi32(p[0], p[1]);
        }
        const __m256i mins = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(bs16 + 16 * i)),
                                               _mm256_loadu_si256((const __m256i *)m[i].mn16));
        if (mode == KM_VEC) {
            const __m512i s = _mm512_add_epi32(S[0], S[1]);
            const __m256i sumi = _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
            const float d = dx[i] * m[i].d, dmn = -dx[i] * m[i].dmin;
            if (t == T_Q2_K) acc = _mm256_fmadd_ps(_mm256_set1_ps(dmn), _mm256_cvtepi32_ps(mins), acc);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
            if (t == T_Q5_K) summs = fmaf(dmn, (float)hsum_i32x8(mins), summs);
            if (t == T_Q4_K) {
                int32_t ml[8];
                _mm256_storeu_si256((__m256i *)ml, mins);
                for (int k = 0; k < 4; k++) accm4[k] = fmaf(dmn, (float)(ml[2 * k] + ml[2 * k + 1]), accm4[k]);
            }
        } else if (mode == KM_TILED) {
            float r = (float)_mm512_reduce_add_epi32(_mm512_add_epi32(S[0], S[1])) * m[i].d;
            if (t != T_Q3_K) r = fmaf(-m[i].dmin, (float)hsum_i32x8(mins), r);
            tacc = fmaf(r, dx[i], tacc);
        } else {
            const float dd = m[i].d * dx[i], dm = m[i].dmin * dx[i];
            if (mode == KM_GEMM) {
                int32_t ml[8];
                _mm256_storeu_si256((__m256i *)ml, mins);
                accs = fmaf((float)_mm512_reduce_add_epi32(S[0]), dd, accs);
                accm = fmaf((float)(ml[0] + ml[1] + ml[2] + ml[3]), dm, accm);
                accs = fmaf((float)_mm512_reduce_add_epi32(S[1]), dd, accs);
                accm = fmaf((float)(ml[4] + ml[5] + ml[6] + ml[7]), dm, accm);
            } else {
                accs = fmaf((float)_mm512_reduce_add_epi32(_mm512_add_epi32(S[0], S[1])), dd, accs);
                accm = fmaf((float)hsum_i32x8(mins), dm, accm);
            }
        }
    }
    if (mode == KM_TILED) return tacc;
    if (mode != KM_VEC) return accs - accm;
    const float h = hsum8(acc);
    if (t == T_Q4_K) return h + ((accm4[0] + accm4[2]) + (accm4[1] + accm4[3]));
    return t == T_Q5_K ? h + summs : h;
}
#else
static float dot_k235(int t, int mode, const uint8_t *u, const k235meta *m, const int8_t *a, const int32_t *c4,
                      const float *dx, const int16_t *bs16, int64_t nsb) {
    float acc[8] = {0}, summs = 0.f, tacc = 0.f, accm = 0.f, accm4[4] = {0.f, 0.f, 0.f, 0.f};
    int32_t lo[8], hi[8], mins[8];
    for (int64_t i = 0; i < nsb; i++) {
        k235_ints(u + 256 * i, a + 256 * i, c4 ? c4 + 64 * i : NULL, bs16 + 16 * i, m + i, lo, hi, mins);
        int32_t slo = 0, shi = 0, mlo = 0, mhi = 0;
        for (int l = 0; l < 8; l++) { slo += lo[l]; shi += hi[l]; }
        for (int l = 0; l < 4; l++) { mlo += mins[l]; mhi += mins[l + 4]; }
        if (mode == KM_VEC) {
            const float d = dx[i] * m[i].d, dmn = -dx[i] * m[i].dmin;
            if (t == T_Q2_K)
                for (int l = 0; l < 8; l++) acc[l] = fmaf(dmn, (float)mins[l], acc[l]);
            for (int l = 0; l < 8; l++) acc[l] = fmaf(d, (float)(lo[l] + hi[l]), acc[l]);
            if (t == T_Q5_K) summs = fmaf(dmn, (float)(mlo + mhi), summs);
            if (t == T_Q4_K)
                for (int k = 0; k < 4; k++) accm4[k] = fmaf(dmn, (float)(mins[2 * k] + mins[2 * k + 1]), accm4[k]);
        } else if (mode == KM_TILED) {
            float r = (float)(slo + shi) * m[i].d;
            if (t != T_Q3_K) r = fmaf(-m[i].dmin, (float)(mlo + mhi), r);
            tacc = fmaf(r, dx[i], tacc);
        } else {
            const float dd = m[i].d * dx[i], dm = m[i].dmin * dx[i];
            if (mode == KM_GEMM) {
                acc[0] = fmaf((float)slo, dd, acc[0]); accm = fmaf((float)mlo, dm, accm);
                acc[0] = fmaf((float)shi, dd, acc[0]); accm = fmaf((float)mhi, dm, accm);
            } else {
                acc[0] = fmaf((float)(slo + shi), dd, acc[0]); accm = fmaf((float)(mlo + mhi), dm, accm);
            }
        }
    }
    if (mode == KM_TILED) return tacc;
    if (mode != KM_VEC) return acc[0] - accm;
    const float h = hsum8_ref(acc);
    if (t == T_Q4_K) return h + ((accm4[0] + accm4[2]) + (accm4[1] + accm4[3]));
    return t == T_Q5_K ? h + summs : h;
}
#endif

/* rows_alone: each activation row gets the arithmetic of a batch of one (no gemm, no tiled kernel) */
static int matmul_k235(int t, const uint8_t *W, int64_t n_out, int64_t n_in, const float *X, int64_t B, float *Y,
                       int nthreads, int rows_alone) {
    const int64_t nsb = n_in / 256, row_bytes = nsb * (t == T_Q2_K ? 84 : t == T_Q3_K ? 110 : t == T_Q4_K ? 144 : 176);
    const int repack = t == T_Q2_K && n_out % 8 == 0;
    const int64_t B4 = repack && !rows_alone ? B - B % 4 : 0;
    const int mode = repack ? KM_GEMV : B >= 8 && !rows_alone ? KM_TILED : KM_VEC;
    int8_t *qa = (int8_t *)aligned_alloc(64, (size_t)(B * n_in));
    float *dx = (float *)malloc((size_t)(B * nsb) * sizeof(float));
    int32_t *bs32 = (int32_t *)malloc((size_t)(B * nsb * 8) * sizeof(int32_t));
    int16_t *bs16 = (int16_t *)malloc((size_t)(B * nsb * 16) * sizeof(int16_t));
    int32_t *c4 = t == T_Q3_K ? (int32_t *)malloc((size_t)(B * n_in / 4) * sizeof(int32_t)) : NULL;
    if (!qa || !dx || !bs32 || !bs16 || (t == T_Q3_K && !c4)) {
        free(qa); free(dx); free(bs32); free(bs16); free(c4); return 2;
    }
    const int64_t BC = 64;
    int err = 0;
#pragma omp parallel num_threads(nthreads)
    {
#pragma omp for schedule(static)
        for (int64_t b = 0; b < B; b++) {
            quant_row_q8k_exact(X + b * n_in, n_in, b < B4, qa + b * n_in, dx + b * nsb, bs32 + b * nsb * 8,
                                bs16 + b * nsb * 16);
            if (c4) {
                const int8_t *q = qa + b * n_in;
                for (int64_t k = 0; k < n_in / 4; k++)
                    c4[b * (n_in / 4) + k] = -4 * ((int32_t)q[4 * k] + q[4 * k + 1] + q[4 * k + 2] + q[4 * k + 3]);
            }
        }
        uint8_t *u = (uint8_t *)aligned_alloc(64, (size_t)n_in);
        k235meta *meta = (k235meta *)malloc((size_t)nsb * sizeof(k235meta));
        const int ok = u && meta;
        if (!ok) {
#pragma omp atomic write
            err = 2;
        }
        for (int64_t b0 = 0; b0 < B; b0 += BC) {
            const int64_t b1 = b0 + BC < B ? b0 + BC : B;
#pragma omp for schedule(static)
            for (int64_t o = 0; o < n_out; o++) {
                if (!ok) continue;
                const uint8_t *r = W + o * row_bytes;
                k235_codes(t, r, nsb, u);
                k235_meta_row(t, r, nsb, meta);
                for (int64_t b = b0; b < b1; b++)
                    Y[b * n_out + o] = dot_k235(t, b < B4 ? KM_GEMM : mode, u, meta, qa + b * n_in,
                                                c4 ? c4 + b * (n_in / 4) : NULL, dx + b * nsb, bs16 + b * nsb * 16, nsb);
            }
        }
        free(u); free(meta);
    }
    free(qa); free(dx); free(bs32); free(bs16); free(c4);
    return err;
}

/* ---- IQ4_NL: llama.cpp's exact float arithmetic ---------------------------------------------------------- */
/* Q8_0 activations (quantize_row_q8_0; ggml_quantize_mat_q8_0_4x8 gives the same values).  llama.cpp (x86, AVX2)
 * takes one of three kernels:
 *   n_out % 8 == 0: the matrix is repacked at load (iq4_nl_8x8), ggml_gemm/gemv_iq4_nl_8x8_q8_0 multiply it: one
 *       integer dot per block of 32, acc = fma((float)dot, d_w * d_x, acc) block after block, for any batch size;
 *   otherwise, more than one activation row: llamafile's tinyBLAS_Q0_AVX, 8 lanes of 4 values: matmul32 above;
 *   otherwise (one row): ggml_vec_dot_iq4_nl_q8_0, the same 8 lanes but two accumulators, the even blocks' and the
 *       odd blocks', summed lane by lane before hsum_float_8; an odd last block is added in scalar code,
 *       sumf += d * (float)dot, the product rounded before the add (checked against the shipped libggml-cpu).
 * The unsigned u = w + 127 make vpdpbusd exact, its sums started from (or corrected by) -127 x the activation sums. */

static float dot_iq4nl_lane1(const uint8_t *u, const float *dw, const int8_t *a, const float *dx, const int32_t *s32,
                             int64_t nb) {
    float acc = 0.f;
    int32_t dot[8];
    for (int64_t i = 0; i < nb; i += 8) {
        dots8(u + 32 * i, a + 32 * i, dot, 1); /* u, a: zero-padded to whole 256-byte groups */
        const int64_t n = nb - i < 8 ? nb - i : 8;
        for (int64_t j = 0; j < n; j++)
            acc = fmaf((float)(dot[j] - dp4_off(127) * s32[i + j]), dw[i + j] * dx[i + j], acc);
    }
    return acc;
}

/* the 8 lanes of one block: lane l = sum over values 4l..4l+3 of w * x (c4: -127 x the 4-sums of x) */
static inline void lanes8(const uint8_t *u, const int8_t *a, const int32_t *c4, int32_t *lane) {
#ifdef HQ_SIMD
    _mm256_storeu_si256((__m256i *)lane, dp4(_mm256_loadu_si256((const __m256i *)c4),
                                             _mm256_loadu_si256((const __m256i *)u),
                                             _mm256_loadu_si256((const __m256i *)a), 1));
#else
    for (int l = 0; l < 8; l++) {
        int32_t s = c4[l];
        for (int e = 4 * l; e < 4 * l + 4; e++) s += (int32_t)u[e] * a[e];
        lane[l] = s;
    }
#endif
}

static float dot_iq4nl_vecdot(const uint8_t *u, const float *dw, const int8_t *a, const float *dx, const int32_t *c4,
                              int64_t nb) {
    float acc[2][8] = {{0}}, sum[8];
    int32_t lane[8];
    int64_t ib = 0;
    for (; ib + 1 < nb; ib += 2)
        for (int k = 0; k < 2; k++) {
            const int64_t g = ib + k;
            lanes8(u + 32 * g, a + 32 * g, c4 + 8 * g, lane);
            const float d = dx[g] * dw[g];
            for (int l = 0; l < 8; l++) acc[k][l] = fmaf(d, (float)lane[l], acc[k][l]);
        }
    for (int l = 0; l < 8; l++) sum[l] = acc[0][l] + acc[1][l];
    float sumf = hsum8_ref(sum);
    if (ib < nb) {
        lanes8(u + 32 * ib, a + 32 * ib, c4 + 8 * ib, lane);
        int32_t tot = 0;
        for (int l = 0; l < 8; l++) tot += lane[l];
        volatile float p = dx[ib] * dw[ib] * (float)tot; /* rounded on its own: no fused multiply-add */
        sumf += p;
    }
    return sumf;
}

static int matmul_iq4nl(const uint8_t *W, int64_t n_out, int64_t n_in, const float *X, int64_t B, float *Y,
                        int nthreads) {
    const int lane1 = n_out % 8 == 0;
    if (!lane1 && B > 1) { /* tinyBLAS */
        qinfo qi;
        type_info(T_IQ4_NL, &qi);
        return matmul32(T_IQ4_NL, W, n_out, n_in, X, B, Y, nthreads, &qi);
    }
    const int64_t nb = n_in / 32, row_bytes = nb * 18, qstride = round_up(n_in, 256);
    int8_t *qa = (int8_t *)aligned_alloc(64, (size_t)(B * qstride));
    float *dx = (float *)malloc((size_t)(B * nb) * sizeof(float));
    float *S = (float *)malloc((size_t)(B * nb) * sizeof(float));
    int32_t *sums = (int32_t *)malloc((size_t)(B * nb * 8) * sizeof(int32_t)); /* s32 [nb] (lane1) or c4 [nb][8] */
    if (!qa || !dx || !S || !sums) { free(qa); free(dx); free(S); free(sums); return 2; }
    const int64_t BC = 64;
    int err = 0;
#pragma omp parallel num_threads(nthreads)
    {
#pragma omp for schedule(static)
        for (int64_t b = 0; b < B; b++) {
            int8_t *q = qa + b * qstride;
            memset(q + n_in, 0, (size_t)(qstride - n_in));
            quant_row_q8(X + b * n_in, n_in, 0, q, dx + b * nb, S + b * nb);
            int32_t *c = sums + b * nb * 8;
            for (int64_t k = 0; k < nb; k++) {
                int32_t s32 = 0;
                for (int l = 0; l < 8; l++) {
                    const int8_t *e = q + 32 * k + 4 * l;
                    const int32_t s4 = (int32_t)e[0] + e[1] + e[2] + e[3];
                    if (!lane1) c[8 * k + l] = -dp4_off(127) * s4;
                    s32 += s4;
                }
                if (lane1) c[k] = s32;
            }
        }
        uint8_t *u = (uint8_t *)aligned_alloc(64, (size_t)qstride);
        float *swb = (float *)malloc((size_t)nb * sizeof(float));
        float *mwb = (float *)malloc((size_t)nb * sizeof(float));
        const int ok = u && swb && mwb;
        if (!ok) {
#pragma omp atomic write
            err = 2;
        } else {
            memset(u, 0, (size_t)qstride);
        }
        for (int64_t b0 = 0; b0 < B; b0 += BC) {
            const int64_t b1 = b0 + BC < B ? b0 + BC : B;
#pragma omp for schedule(static)
            for (int64_t o = 0; o < n_out; o++) {
                if (!ok) continue;
                unpack_row(T_IQ4_NL, W + o * row_bytes, nb, u, swb, mwb);
                for (int64_t b = b0; b < b1; b++) {
                    const int8_t *a = qa + b * qstride;
                    const int32_t *sb = sums + b * nb * 8;
                    Y[b * n_out + o] = lane1 ? dot_iq4nl_lane1(u, swb, a, dx + b * nb, sb, nb)
                                             : dot_iq4nl_vecdot(u, swb, a, dx + b * nb, sb, nb);
                }
            }
        }
        free(u); free(swb); free(mwb);
    }
    free(qa); free(dx); free(S); free(sums);
    return err;
}

/* ---- entry points ------------------------------------------------------------------------------------------ */

int hq_supported(int t) { qinfo qi; return type_info(t, &qi); }

int hq_avx512(void) {
#ifdef HQ_AVX512
    return 1;
#else
    return 0;
#endif
}

/* Y[B, n_out] = X[B, n_in] @ W[n_out, n_in]^T; W row-major GGUF blocks. rows_alone: the rows are separate sequences
 * decoded together; the K-quants give each the arithmetic of a batch of one. Returns 0 on success. */
int hq_matmul_rows(int t, const uint8_t *W, int64_t n_out, int64_t n_in, const float *X, int64_t B, float *Y,
                   int nthreads, int rows_alone) {
    qinfo qi;
    if (!type_info(t, &qi) || n_in % qi.block != 0 || B <= 0 || n_out <= 0) return 1;
    if (nthreads < 1) nthreads = 1;
    if (B * n_out * n_in < (1 << 15)) nthreads = 1;
    if (t == T_IQ4_NL) return matmul_iq4nl(W, n_out, n_in, X, B, Y, nthreads);
    if (qi.block == 32) return matmul32(t, W, n_out, n_in, X, B, Y, nthreads, &qi);
    if (t == T_Q6_K || (t == T_Q4_K && n_out % 8 == 0))
        return matmul_k_exact(t, W, n_out, n_in, X, B, Y, nthreads, &qi, rows_alone);
    if (t == T_Q2_K || t == T_Q3_K || t == T_Q4_K || t == T_Q5_K)
        return matmul_k235(t, W, n_out, n_in, X, B, Y, nthreads, rows_alone);
    const int G = qi.group;
    const int64_t ng = n_in / G, nb = n_in / qi.block, row_bytes = nb * qi.size;
    const int64_t qstride = round_up(n_in, 64) + 64, gstride = round_up(ng, 16);
    int8_t *qa = (int8_t *)aligned_alloc(64, (size_t)(B * qstride));
    float *sa = (float *)aligned_alloc(64, (size_t)(B * gstride) * sizeof(float));
    float *S = (float *)aligned_alloc(64, (size_t)(B * gstride) * sizeof(float));
    if (!qa || !sa || !S) { free(qa); free(sa); free(S); return 2; }
    if (nthreads < 1) nthreads = 1;
    if (B * n_out * n_in < (1 << 15)) nthreads = 1;
    const int64_t BC = 64; /* activation rows per pass over the weights */
    int err = 0;
#pragma omp parallel num_threads(nthreads)
    {
#pragma omp for schedule(static)
        for (int64_t b = 0; b < B; b++) {
            memset(qa + b * qstride + n_in, 0, (size_t)(qstride - n_in));
            if (qi.amode == 2) quant_row_q8k(X + b * n_in, n_in, G, qa + b * qstride, sa + b * gstride, S + b * gstride);
            else quant_row_q8(X + b * n_in, n_in, qi.amode, qa + b * qstride, sa + b * gstride, S + b * gstride);
        }
        uint8_t *u = (uint8_t *)aligned_alloc(64, (size_t)qstride);
        float *swb = (float *)aligned_alloc(64, (size_t)gstride * sizeof(float));
        float *mwb = (float *)aligned_alloc(64, (size_t)gstride * sizeof(float));
        if (!u || !swb || !mwb) {
#pragma omp atomic write
            err = 2;
        } else {
            memset(u, 0, (size_t)qstride);
        }
        for (int64_t b0 = 0; b0 < B; b0 += BC) {
            const int64_t b1 = b0 + BC < B ? b0 + BC : B;
#pragma omp for schedule(static)
            for (int64_t o = 0; o < n_out; o++) {
                if (!u || !swb || !mwb) continue;
                unpack_row(t, W + o * row_bytes, nb, u, swb, mwb);
                for (int64_t b = b0; b < b1; b++)
                    Y[b * n_out + o] = dot_row(u, swb, mwb, qa + b * qstride, sa + b * gstride, S + b * gstride, ng, G);
            }
        }
        free(u); free(swb); free(mwb);
    }
    free(qa); free(sa); free(S);
    return err;
}

int hq_matmul(int t, const uint8_t *W, int64_t n_out, int64_t n_in, const float *X, int64_t B, float *Y,
              int nthreads) {
    return hq_matmul_rows(t, W, n_out, n_in, X, B, Y, nthreads, 0);
}
