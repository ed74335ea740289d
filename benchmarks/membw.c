/* Memory read bandwidth, the bound on decoding speed: `cc -O2 -march=native -fopenmp benchmarks/membw.c -o membw &&
 * ./membw [threads]`. Streams a 1 GiB buffer (far beyond any cache) with AVX-512 loads; best of 5 passes. */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    const int nt = argc > 1 ? atoi(argv[1]) : omp_get_num_procs();
    const size_t n = (size_t)1 << 30;
    char *p = aligned_alloc(64, n);
    if (!p) return 1;
    memset(p, 1, n);
    double best = 0;
    long sink = 0;
    for (int rep = 0; rep < 5; rep++) {
        const double t = omp_get_wtime();
#pragma omp parallel num_threads(nt) reduction(+ : sink)
        {
            __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
#pragma omp for schedule(static)
            for (size_t i = 0; i < n; i += 256) {
                a0 = _mm512_add_epi64(a0, _mm512_load_si512(p + i));
                a1 = _mm512_add_epi64(a1, _mm512_load_si512(p + i + 64));
                a2 = _mm512_add_epi64(a2, _mm512_load_si512(p + i + 128));
                a3 = _mm512_add_epi64(a3, _mm512_load_si512(p + i + 192));
            }
            sink += _mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
        }
        const double gbs = n / (omp_get_wtime() - t) / 1e9;
        if (gbs > best) best = gbs;
    }
    printf("%d threads: %.1f GB/s read (%ld)\n", nt, best, sink & 1);
    free(p);
    return 0;
}
