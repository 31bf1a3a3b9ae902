/* The int8 rows kernel of a shared generation (search_service/engine/native_rows.py loads it with ctypes).
 *
 * out[j * out_stride + i] = sum over k of row_i[k] (uint8, code + 64) * q[j * dim + k] (int8), with
 * row_i = rows + (idx ? idx[i] : i) * dim: the rows in place or picked by their numbers, never copied.
 * AVX-512 VNNI's vpdpbusd multiplies exactly these operand types (u8 x s8, four pairs summed into an int32, no
 * saturation). Rows are read a block at a time and scored for every query of the batch while in cache, so a
 * batch reads the rows once; picked rows are prefetched a block ahead (a random row is ~6 cache misses).
 * The sums are exact integers: |sum| <= 1024 x 127 x 127 < 2^24 for dim <= 1024, held exactly by a float32.
 * Plain C with no Python API: built as an optional extension (setup.py), loaded where the CPU supports it. */
#include <immintrin.h>
#include <stdint.h>

#define BLOCK 32 /* rows a block */
#define VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

VNNI static inline float sum_of(__m512i v) { return (float)_mm512_reduce_add_epi32(v); }

/* Four rows at a time: four independent accumulators keep vpdpbusd's latency hidden. */
VNNI static void score_block(const uint8_t *const *row, int64_t nb, int64_t dim, const int8_t *q, int64_t nq,
                             float *out, int64_t out_stride) {
    for (int64_t j = 0; j < nq; j++) {
        const int8_t *qj = q + j * dim;
        float *o = out + j * out_stride;
        int64_t r = 0;
        for (; r + 4 <= nb; r += 4) {
            __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
            for (int64_t k = 0; k < dim; k += 64) {
                __m512i qv = _mm512_loadu_si512(qj + k);
                a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512(row[r] + k), qv);
                a1 = _mm512_dpbusd_epi32(a1, _mm512_loadu_si512(row[r + 1] + k), qv);
                a2 = _mm512_dpbusd_epi32(a2, _mm512_loadu_si512(row[r + 2] + k), qv);
                a3 = _mm512_dpbusd_epi32(a3, _mm512_loadu_si512(row[r + 3] + k), qv);
            }
            o[r] = sum_of(a0);
            o[r + 1] = sum_of(a1);
            o[r + 2] = sum_of(a2);
            o[r + 3] = sum_of(a3);
        }
        for (; r < nb; r++) {
            __m512i a0 = _mm512_setzero_si512();
            for (int64_t k = 0; k < dim; k += 64)
                a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512(row[r] + k), _mm512_loadu_si512(qj + k));
            o[r] = sum_of(a0);
        }
    }
}

/* dim must be a multiple of 64 and at most 1024; idx (may be NULL) within 0..rows-1: the caller checks both. */
VNNI void rowdot_u8s8(const uint8_t *rows, int64_t dim, const int64_t *idx, int64_t n, const int8_t *q, int64_t nq,
                      float *out, int64_t out_stride) {
    const uint8_t *row[BLOCK];
    for (int64_t at = 0; at < n; at += BLOCK) {
        int64_t nb = n - at < BLOCK ? n - at : BLOCK;
        for (int64_t r = 0; r < nb; r++) {
            int64_t i = at + r;
            row[r] = rows + (idx ? idx[i] : i) * dim;
            if (idx && i + BLOCK < n) {
                const char *ahead = (const char *)(rows + idx[i + BLOCK] * dim);
                for (int64_t c = 0; c < dim; c += 64)
                    _mm_prefetch(ahead + c, _MM_HINT_T0);
            }
        }
        score_block(row, nb, dim, q, nq, out + at, out_stride);
    }
}

int rowdot_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vnni");
}
