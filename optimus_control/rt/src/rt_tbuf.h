/* Lock-free triple buffer: one writer, one reader, neither ever waits for the other.
 *
 * Three slots of n doubles. The writer owns `back`, the reader owns `front`, and `mid` holds the third
 * slot plus a "fresh" bit. The writer fills its slot and swaps it into `mid` (marking it fresh); the
 * reader, when `mid` is fresh, swaps its slot with `mid`. Each side only ever touches the slot it owns,
 * so a read is never torn, and neither side loops or blocks (a real-time reader cannot be stalled by a
 * preempted writer, which a seqlock reader could). The reader sees the latest complete write.
 */
#ifndef OPTIMUS_RT_TBUF_H
#define OPTIMUS_RT_TBUF_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RT_TBUF_FRESH 4u

typedef struct {
    _Atomic uint32_t mid;  /* slot index | RT_TBUF_FRESH */
    uint32_t back;         /* writer-owned slot */
    uint32_t front;        /* reader-owned slot */
    size_t n;              /* doubles per slot */
    double *slots;         /* 3 * n, 64-byte aligned */
    _Atomic uint64_t writes;
} rt_tbuf;

static inline int rt_tbuf_init(rt_tbuf *t, size_t n) {
    size_t bytes = ((3 * (n ? n : 1) * sizeof(double)) + 63u) & ~(size_t)63u;
    t->slots = aligned_alloc(64, bytes);
    if (!t->slots) return -1;
    memset(t->slots, 0, bytes);
    t->n = n;
    t->back = 0;
    atomic_init(&t->mid, 1u);
    t->front = 2;
    atomic_init(&t->writes, 0);
    return 0;
}

static inline void rt_tbuf_free(rt_tbuf *t) {
    free(t->slots);
    t->slots = NULL;
}

/* Writer: the slot to fill (n doubles); publish it with rt_tbuf_commit. */
static inline double *rt_tbuf_back(rt_tbuf *t) { return t->slots + (size_t)t->back * t->n; }

static inline void rt_tbuf_commit(rt_tbuf *t) {
    uint32_t prev = atomic_exchange_explicit(&t->mid, t->back | RT_TBUF_FRESH, memory_order_acq_rel);
    t->back = prev & 3u;
    atomic_fetch_add_explicit(&t->writes, 1, memory_order_relaxed);
}

/* Reader: takes the latest write if there is a fresh one; returns the reader's slot (valid until the
 * next rt_tbuf_read) and sets *fresh. */
static inline const double *rt_tbuf_read(rt_tbuf *t, int *fresh) {
    int got = 0;
    if (atomic_load_explicit(&t->mid, memory_order_relaxed) & RT_TBUF_FRESH) {
        uint32_t prev = atomic_exchange_explicit(&t->mid, t->front, memory_order_acq_rel);
        t->front = prev & 3u;
        got = 1;
    }
    if (fresh) *fresh = got;
    return t->slots + (size_t)t->front * t->n;
}

/* Reader: the slot of the previous rt_tbuf_read, without taking a newer write. */
static inline const double *rt_tbuf_front(const rt_tbuf *t) { return t->slots + (size_t)t->front * t->n; }

#endif
