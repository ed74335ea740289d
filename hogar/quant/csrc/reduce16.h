/* Sixteen horizontal sums at once, each in _mm512_reduce_add_ps's order (as ggml_ops.c's reductions): shared by
fmatmul.c and encoder.c, whose F16/F32 matmuls must round as ggml does. */
#ifndef HOGAR_REDUCE16_H
#define HOGAR_REDUCE16_H
#if defined(__AVX512F__)
#include <immintrin.h>

/* out[k] = reduce16(v[k]) for 16 vectors */
static inline __m512 reduce16x16(const __m512 *v) {
    __m512 s[8], t[4], u[2];
    for (int k = 0; k < 8; k++) {
        const __m512 lo = _mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0x44);
        const __m512 hi = _mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0xEE);
        s[k] = _mm512_add_ps(lo, hi);
    }
    for (int k = 0; k < 4; k++) {
        const __m512 lo = _mm512_shuffle_f32x4(s[2 * k], s[2 * k + 1], 0x88);
        const __m512 hi = _mm512_shuffle_f32x4(s[2 * k], s[2 * k + 1], 0xDD);
        t[k] = _mm512_add_ps(lo, hi);
    }
    for (int k = 0; k < 2; k++) {
        const __m512 lo = _mm512_shuffle_ps(t[2 * k], t[2 * k + 1], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512 hi = _mm512_shuffle_ps(t[2 * k], t[2 * k + 1], _MM_SHUFFLE(3, 2, 3, 2));
        u[k] = _mm512_add_ps(lo, hi);
    }
    const __m512 lo = _mm512_shuffle_ps(u[0], u[1], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512 hi = _mm512_shuffle_ps(u[0], u[1], _MM_SHUFFLE(3, 1, 3, 1));
    const __m512 r = _mm512_add_ps(lo, hi);
    const __m512i idx = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    return _mm512_permutexvar_ps(idx, r);
}
#endif
#endif
