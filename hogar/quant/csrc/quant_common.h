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
#if defined(HQ_AVX512) || defined(__F16C__)
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
