/* The int8 rows kernel of a shared generation (search_service/engine/native_rows.py loads it with ctypes).
 *
 * out[j * out_stride + i] = sum over k of row_i[k] (uint8, code + 64) * q[j * dim + k] (int8), with
 * row_i = rows + (idx ? idx[i] : i) * dim: the rows in place or picked by their numbers, never copied.
 * AVX-512 VNNI's vpdpbusd multiplies exactly these operand types (u8 x s8, four pairs summed into an int32, no
 * saturation). Rows are read a block at a time and scored for every query of the batch while in cache, so a
 * batch reads the rows once; picked rows are prefetched into L2 three blocks ahead (a random row is ~6 cache
 * misses; L2 keeps more of them in flight than L1: 1M rows, 136k / 400k picked, 7.3 / 19.6 -> 5.0 / 12.8 ms).
 * The sums are exact integers: |sum| <= 1024 x 127 x 127 < 2^24 for dim <= 1024, held exactly by a float32.
 *
 * The model's 384 codes have a faster path: two queries held in registers for four rows at a time (a row's
 * 64-byte piece loaded once for both, the sixteen lanes of four sums folded together), and contiguous rows
 * prefetched into L2 AHEAD rows ahead of the block: the hardware's prefetcher lost the stream when a block was
 * read twice (1M rows, four queries, 29 ms without it, 14 with it; 41 before the two-query blocks). One or two
 * queries over contiguous rows read each block once, row after row, and leave the stream to the hardware
 * (stream_one, stream_two). setup.py aligns the loops: without it, adding those two moved the others' loops and
 * four queries took 14.0 -> 16.5 ms, eight 24.1 -> 27.6.
 * Plain C with no Python API: built as an optional extension (setup.py), loaded where the CPU supports it. */
#include <immintrin.h>
#include <stdint.h>

#define BLOCK 32 /* rows a block */
#define FAST_DIM 384
#define PIECES (FAST_DIM / 64) /* 64-byte pieces of a row */
#define AHEAD 64 /* contiguous rows prefetched this many rows ahead (32-256 measured alike) */
#define PICK_AHEAD 96 /* picked rows prefetched into L2 this many rows ahead: more misses in flight than L1 keeps */
#define VNNI __attribute__((target("avx512f,avx512bw,avx512vnni,avx512vl")))

VNNI static inline float sum_of(__m512i v) { return (float)_mm512_reduce_add_epi32(v); }

/* Each of the four accumulators' lanes summed, stored as four floats in order: three lane folds for four sums. */
VNNI static inline void store_sums4(float *o, __m512i a, __m512i b, __m512i c, __m512i d) {
    __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
    __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
    __m512i v = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
    __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    _mm_storeu_ps(o, _mm_cvtepi32_ps(s));
}

VNNI static inline void prefetch_ahead(const uint8_t *row, int rows) {
    for (int c = 0; c < rows * FAST_DIM; c += 64)
        _mm_prefetch((const char *)row + AHEAD * FAST_DIM + c, _MM_HINT_T1);
}

/* Rows r..nb-1 one at a time (a block's last rows). */
VNNI static void fast_rest(const uint8_t *const *row, int64_t r, int64_t nb, const int8_t *q, float *o) {
    for (; r < nb; r++) {
        __m512i a = _mm512_setzero_si512();
        for (int k = 0; k < PIECES; k++)
            a = _mm512_dpbusd_epi32(a, _mm512_loadu_si512(row[r] + 64 * k), _mm512_loadu_si512(q + 64 * k));
        o[r] = sum_of(a);
    }
}

/* One query over a block, eight rows at a time (eight independent accumulators hide vpdpbusd's latency). */
VNNI static void fast_one(const uint8_t *const *row, int64_t nb, int contiguous, const int8_t *q, float *o) {
    __m512i qv[PIECES];
    for (int k = 0; k < PIECES; k++)
        qv[k] = _mm512_loadu_si512(q + 64 * k);
    int64_t r = 0;
    for (; r + 8 <= nb; r += 8) {
        if (contiguous)
            prefetch_ahead(row[r], 8);
        __m512i a[8];
        for (int i = 0; i < 8; i++)
            a[i] = _mm512_setzero_si512();
        for (int k = 0; k < PIECES; k++)
            for (int i = 0; i < 8; i++)
                a[i] = _mm512_dpbusd_epi32(a[i], _mm512_loadu_si512(row[r + i] + 64 * k), qv[k]);
        store_sums4(o + r, a[0], a[1], a[2], a[3]);
        store_sums4(o + r + 4, a[4], a[5], a[6], a[7]);
    }
    fast_rest(row, r, nb, q, o);
}

/* Two queries over a block, four rows at a time: each piece of a row loaded once for both queries. */
VNNI static void fast_two(const uint8_t *const *row, int64_t nb, int contiguous, const int8_t *q0, const int8_t *q1,
                          float *o0, float *o1) {
    __m512i q0v[PIECES], q1v[PIECES];
    for (int k = 0; k < PIECES; k++) {
        q0v[k] = _mm512_loadu_si512(q0 + 64 * k);
        q1v[k] = _mm512_loadu_si512(q1 + 64 * k);
    }
    int64_t r = 0;
    for (; r + 4 <= nb; r += 4) {
        if (contiguous)
            prefetch_ahead(row[r], 4);
        __m512i a[4], b[4];
        for (int i = 0; i < 4; i++)
            a[i] = b[i] = _mm512_setzero_si512();
        for (int k = 0; k < PIECES; k++)
            for (int i = 0; i < 4; i++) {
                __m512i piece = _mm512_loadu_si512(row[r + i] + 64 * k);
                a[i] = _mm512_dpbusd_epi32(a[i], piece, q0v[k]);
                b[i] = _mm512_dpbusd_epi32(b[i], piece, q1v[k]);
            }
        store_sums4(o0 + r, a[0], a[1], a[2], a[3]);
        store_sums4(o1 + r, b[0], b[1], b[2], b[3]);
    }
    fast_rest(row, r, nb, q0, o0);
    fast_rest(row, r, nb, q1, o1);
}

/* Contiguous rows for one or two queries: each row's pieces loaded in order, with no software prefetch. The
 * hardware's prefetcher follows that stream, where the piece-major order (a piece of eight rows, then the next)
 * needed prefetches and still ran slower (1M rows, one query, 18.8 -> 15.3 ms; two 19.2 -> 13.1; the bandwidth
 * floor, a plain sum of the bytes, 12.3). A block read twice (three queries or more) keeps the prefetching loops
 * above: there the second read lost the hardware's stream. These repeat fast_one's and fast_two's arithmetic on
 * purpose: the loop order and prefetch as a flag of theirs, even one never set, cost ~15 % in the loop here. */
VNNI static void stream_one(const uint8_t *const *row, int64_t nb, const int8_t *q, float *o) {
    __m512i qv[PIECES];
    for (int k = 0; k < PIECES; k++)
        qv[k] = _mm512_loadu_si512(q + 64 * k);
    int64_t r = 0;
    for (; r + 8 <= nb; r += 8) {
        __m512i a[8];
        for (int i = 0; i < 8; i++)
            a[i] = _mm512_setzero_si512();
        for (int i = 0; i < 8; i++)
            for (int k = 0; k < PIECES; k++)
                a[i] = _mm512_dpbusd_epi32(a[i], _mm512_loadu_si512(row[r + i] + 64 * k), qv[k]);
        store_sums4(o + r, a[0], a[1], a[2], a[3]);
        store_sums4(o + r + 4, a[4], a[5], a[6], a[7]);
    }
    fast_rest(row, r, nb, q, o);
}

VNNI static void stream_two(const uint8_t *const *row, int64_t nb, const int8_t *q0, const int8_t *q1, float *o0,
                            float *o1) {
    __m512i q0v[PIECES], q1v[PIECES];
    for (int k = 0; k < PIECES; k++) {
        q0v[k] = _mm512_loadu_si512(q0 + 64 * k);
        q1v[k] = _mm512_loadu_si512(q1 + 64 * k);
    }
    int64_t r = 0;
    for (; r + 4 <= nb; r += 4) {
        __m512i a[4], b[4];
        for (int i = 0; i < 4; i++)
            a[i] = b[i] = _mm512_setzero_si512();
        for (int i = 0; i < 4; i++)
            for (int k = 0; k < PIECES; k++) {
                __m512i piece = _mm512_loadu_si512(row[r + i] + 64 * k);
                a[i] = _mm512_dpbusd_epi32(a[i], piece, q0v[k]);
                b[i] = _mm512_dpbusd_epi32(b[i], piece, q1v[k]);
            }
        store_sums4(o0 + r, a[0], a[1], a[2], a[3]);
        store_sums4(o1 + r, b[0], b[1], b[2], b[3]);
    }
    fast_rest(row, r, nb, q0, o0);
    fast_rest(row, r, nb, q1, o1);
}

/* Any dim (a multiple of 64): four rows at a time, one query after another. */
VNNI static void any_dim(const uint8_t *const *row, int64_t nb, int64_t dim, const int8_t *q, int64_t nq,
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
            store_sums4(o + r, a0, a1, a2, a3);
        }
        for (; r < nb; r++) {
            __m512i a0 = _mm512_setzero_si512();
            for (int64_t k = 0; k < dim; k += 64)
                a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512(row[r] + k), _mm512_loadu_si512(qj + k));
            o[r] = sum_of(a0);
        }
    }
}

VNNI static void score_block(const uint8_t *const *row, int64_t nb, int contiguous, int64_t dim, const int8_t *q,
                             int64_t nq, float *out, int64_t out_stride) {
    if (dim != FAST_DIM) {
        any_dim(row, nb, dim, q, nq, out, out_stride);
        return;
    }
    if (contiguous && nq == 1) {
        stream_one(row, nb, q, out);
        return;
    }
    if (contiguous && nq == 2) {
        stream_two(row, nb, q, q + dim, out, out + out_stride);
        return;
    }
    int64_t j = 0;
    for (; j + 2 <= nq; j += 2)
        fast_two(row, nb, contiguous, q + j * dim, q + (j + 1) * dim, out + j * out_stride, out + (j + 1) * out_stride);
    if (j < nq)
        fast_one(row, nb, contiguous, q + j * dim, out + j * out_stride);
}

/* dim must be a multiple of 64 and at most 1024; idx (may be NULL) within 0..rows-1: the caller checks both.
 * Prefetches never fault, so reading AHEAD rows past the end of contiguous rows is harmless. */
VNNI void rowdot_u8s8(const uint8_t *rows, int64_t dim, const int64_t *idx, int64_t n, const int8_t *q, int64_t nq,
                      float *out, int64_t out_stride) {
    const uint8_t *row[BLOCK];
    for (int64_t at = 0; at < n; at += BLOCK) {
        int64_t nb = n - at < BLOCK ? n - at : BLOCK;
        for (int64_t r = 0; r < nb; r++) {
            int64_t i = at + r;
            row[r] = rows + (idx ? idx[i] : i) * dim;
            if (idx && i + PICK_AHEAD < n) {
                const char *ahead = (const char *)(rows + idx[i + PICK_AHEAD] * dim);
                for (int64_t c = 0; c < dim; c += 64)
                    _mm_prefetch(ahead + c, _MM_HINT_T1);
            }
        }
        score_block(row, nb, idx == 0, dim, q, nq, out + at, out_stride);
    }
}

int rowdot_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl");
}
