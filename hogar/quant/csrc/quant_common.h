/* What hogar's two matmul kernels (qmatmul.c on GGUF blocks, packed16.c on repacked ones) share: the type table, f16
 * helpers and llama.cpp's quantization of activation rows to Q8_0 / Q8_1. */
#ifndef HOGAR_QUANT_COMMON_H
#define HOGAR_QUANT_COMMON_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
#define HQ_AVX512 1
#endif
/* HQ_SIMD: the 256-bit kernels, with AVX-512 VNNI's vpdpbusd or (HQ_AVX2) AVX2's emulation of it */
#if defined(HQ_AVX512) || (defined(__AVX2__) && defined(__FMA__) && defined(__F16C__))
#define HQ_SIMD 1
#ifndef HQ_AVX512
#define HQ_AVX2 1
#endif
#endif
#if defined(HQ_SIMD) || defined(__F16C__)
#include <immintrin.h>
#endif

enum { T_Q4_0 = 2, T_Q4_1 = 3, T_Q5_0 = 6, T_Q5_1 = 7, T_Q8_0 = 8, T_Q2_K = 10, T_Q3_K = 11, T_Q4_K = 12,
       T_Q5_K = 13, T_Q6_K = 14 };
enum { T_IQ4_NL = 20 };

/* IQ4_NL's 16 levels (ggml-common.h kvalues_iq4nl) plus 127: the unsigned weights u = w + 127 (0..240) that
 * vpdpbusd takes, the sums corrected by -127 x the activation sums */
static const uint8_t IQ4NL_U[16] __attribute__((unused)) = {0,   23,  44,  62,  78,  92,  105, 117,
                                                             128, 140, 152, 165, 180, 196, 216, 240};

#include "f16.h"

#ifdef HQ_SIMD
/* acc + in each 32-bit lane the sum of 4 products u * a: unsigned bytes u, signed a (never -128), as vpdpbusd.
 * AVX2's vpmaddubsw saturates its pair sums at int16, so it is exact for u <= 128 only; with `wide` weights (u up
 * to 255: Q8_0, IQ4_NL) AVX2 multiplies the signed u - 128 instead (llama.cpp's mul_sum_i8_pairs) and returns
 * acc + (u - 128) . a: see dp4_off. */
static inline __attribute__((always_inline)) __m256i dp4(__m256i acc, __m256i u, __m256i a, const int wide) {
#ifdef HQ_AVX512
    (void)wide;
    return _mm256_dpbusd_epi32(acc, u, a);
#else
    __m256i p;
    if (wide) {
        const __m256i s = _mm256_xor_si256(u, _mm256_set1_epi8((char)0x80));
        p = _mm256_maddubs_epi16(_mm256_sign_epi8(s, s), _mm256_sign_epi8(a, s));
    } else {
        p = _mm256_maddubs_epi16(u, a);
    }
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
#endif
}

/* v with 16 added to byte e where bit e of qh is set */
static inline __m256i add_fifth(__m256i v, uint32_t qh) {
#ifdef HQ_AVX512
    return _mm256_mask_add_epi8(v, (__mmask32)qh, v, _mm256_set1_epi8(16));
#else
    /* byte e gets byte e / 8 of the mask, then tests its bit e % 8 (llama.cpp's bytes_from_bits_32) */
    const __m256i shuf = _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202,
                                            0x0303030303030303);
    const __m256i bit = _mm256_set1_epi64x((long long)0x7fbfdfeff7fbfdfe);
    const __m256i m = _mm256_or_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), shuf), bit);
    const __m256i set = _mm256_cmpeq_epi8(m, _mm256_set1_epi64x(-1));
    return _mm256_add_epi8(v, _mm256_and_si256(set, _mm256_set1_epi8(16)));
#endif
}
#endif

/* Weights stored unsigned, u = w + off: the multiple of the activation sums that turns the integer kernels' sums
 * into w . a is -off, or -(off - 128) on AVX2 for the wide ones (off > 64), whose dp4 already subtracted 128 a. */
static inline int dp4_off(int off) {
#ifdef HQ_AVX2
    return off > 64 ? off - 128 : off;
#else
    return off;
#endif
}

static inline float h2f(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return h2f_bits(h); }

static inline float round_f16(float f) { return h2f_bits(f2h(f)); } /* f32 -> nearest f16 -> f32 */

static inline int nearest_int(float f) { /* ggml's: round half to even, |f| < 2^22.  rintf, not ggml's
    * f + 12582912.f trick: inlined into nearest_int(iscale * x), GCC's default -ffp-contract=fast fuses that into
    * an FMA of the unrounded product (llama.cpp rounds the product first), which flips exact .5 ties */
    return (int)rintf(f);
}

/* ---- type table -------------------------------------------------------------------------------------------- */

typedef struct { int block, size, group, amode; } qinfo;
/* amode: 0 = Q8_0 activations, 1 = Q8_1, 2 = Q8_K */

static inline int type_info(int t, qinfo *qi) {
    switch (t) {
    case T_Q4_0: *qi = (qinfo){32, 18, 32, 0}; return 1;
    case T_Q4_1: *qi = (qinfo){32, 20, 32, 1}; return 1;
    case T_Q5_0: *qi = (qinfo){32, 22, 32, 0}; return 1;
    case T_Q5_1: *qi = (qinfo){32, 24, 32, 1}; return 1;
    case T_Q8_0: *qi = (qinfo){32, 34, 32, 0}; return 1;
    case T_Q2_K: *qi = (qinfo){256, 84, 16, 2}; return 1;
    case T_Q3_K: *qi = (qinfo){256, 110, 16, 2}; return 1;
    case T_Q4_K: *qi = (qinfo){256, 144, 32, 2}; return 1;
    case T_Q5_K: *qi = (qinfo){256, 176, 32, 2}; return 1;
    case T_Q6_K: *qi = (qinfo){256, 210, 16, 2}; return 1;
    case T_IQ4_NL: *qi = (qinfo){32, 18, 32, 0}; return 1;
    default: return 0;
    }
}

/* ---- activation quantization ------------------------------------------------------------------------------ */
/* One row of n floats -> q[n] int8, and per group of G: sa (scale) and S (scale * sum of the group's q). */

static inline void quant_row_q8(const float *x, int64_t n, int amode, int8_t *q, float *sa, float *S) {
    for (int64_t i = 0; i < n / 32; i++) {
        const float *xb = x + 32 * i;
        int8_t *qb = q + 32 * i;
        float amax;
        int isum;
#ifdef HQ_AVX512
        __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
        amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        const float id = amax != 0.f ? 127.f / amax : 0.f;
        const __m512 vid = _mm512_set1_ps(id);
        __m512i i0 = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v0, vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        __m512i i1 = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v1, vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        _mm_storeu_si128((__m128i *)qb, _mm512_cvtepi32_epi8(i0));
        _mm_storeu_si128((__m128i *)(qb + 16), _mm512_cvtepi32_epi8(i1));
        isum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
#elif defined(HQ_AVX2)
        const __m256 sign = _mm256_set1_ps(-0.f);
        __m256 v[4], m = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(xb + 8 * k);
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[k]));
        }
        __m128 h = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        amax = _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
        const float id = amax != 0.f ? 127.f / amax : 0.f;
        __m256i iv[4];
        for (int k = 0; k < 4; k++)
            iv[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], _mm256_set1_ps(id)),
                                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        const __m256i s = _mm256_add_epi32(_mm256_add_epi32(iv[0], iv[1]), _mm256_add_epi32(iv[2], iv[3]));
        __m128i r = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0x4E));
        isum = _mm_cvtsi128_si32(_mm_add_epi32(r, _mm_shuffle_epi32(r, 0xB1)));
        /* |values| <= 127: the saturating packs are exact; they interleave the 128-bit halves, the permute undoes it */
        const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(iv[0], iv[1]), _mm256_packs_epi32(iv[2], iv[3]));
        _mm256_storeu_si256((__m256i *)qb, _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
#else
        amax = 0.f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xb[j]));
        const float id = amax != 0.f ? 127.f / amax : 0.f;
        isum = 0;
        for (int j = 0; j < 32; j++) { int v = (int)rintf(xb[j] * id); qb[j] = (int8_t)v; isum += v; }
#endif
        const float d = amax / 127.f, dr = round_f16(d);
        sa[i] = dr;
        S[i] = amode == 0 ? dr * (float)isum : round_f16(d * (float)isum);
    }
}

/* Q8_K rows: q, d per super-block, 32-sums (for Q4_K) and 16-sums (for Q6_K) */
static inline void quant_row_q8k_exact(const float *x, int64_t n, int pos_wins, int8_t *q, float *d, int32_t *bs32,
                                int16_t *bs16) {
    for (int64_t i = 0; i < n / 256; i++) {
        const float *xb = x + 256 * i;
        int8_t *qb = q + 256 * i;
        float max = 0.f, amax = 0.f;
        for (int j = 0; j < 256; j++) {
            const float ax = fabsf(xb[j]);
            if (ax > amax) { amax = ax; max = xb[j]; }
        }
        if (amax == 0.f) {
            memset(qb, 0, 256); d[i] = 0.f;
            for (int j = 0; j < 8; j++) bs32[8 * i + j] = 0;
            for (int j = 0; j < 16; j++) bs16[16 * i + j] = 0;
            continue;
        }
        if (pos_wins) { /* ggml_quantize_mat_q8_K_4x8 (AVX2): negative scale iff some x == +amax */
            int pos = 0;
            for (int j = 0; j < 256; j++) pos |= xb[j] == amax;
            max = pos ? amax : -amax;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < 256; j++) {
            const int v = nearest_int(iscale * xb[j]);
            qb[j] = (int8_t)(v < 127 ? v : 127);
        }
        d[i] = 1.f / iscale;
        for (int j = 0; j < 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += qb[16 * j + l];
            bs16[16 * i + j] = (int16_t)s;
        }
        for (int j = 0; j < 8; j++) bs32[8 * i + j] = bs16[16 * i + 2 * j] + bs16[16 * i + 2 * j + 1];
    }
}

#endif
