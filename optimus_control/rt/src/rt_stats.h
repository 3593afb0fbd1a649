/* Fixed-size latency histogram: written by the loop thread only (no allocation, no locks), read live
 * by Python (relaxed atomics: a snapshot may mix neighbouring ticks, which is fine for statistics).
 * Bins: 1 us wide up to 2 ms, then 100 us wide up to 100 ms, then one overflow bin; max is exact. */
#ifndef OPTIMUS_RT_STATS_H
#define OPTIMUS_RT_STATS_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#define RT_HIST_FINE_US 2000
#define RT_HIST_COARSE_US 100
#define RT_HIST_COARSE_BINS 980 /* 2 ms .. 100 ms */
#define RT_HIST_BINS (RT_HIST_FINE_US + RT_HIST_COARSE_BINS + 1)

typedef struct {
    _Atomic uint64_t bins[RT_HIST_BINS];
    _Atomic uint64_t count;
    _Atomic int64_t max_ns;
    _Atomic int64_t sum_ns;
} rt_hist;

static inline void rt_hist_reset(rt_hist *h) {
    for (int i = 0; i < RT_HIST_BINS; ++i) atomic_store_explicit(&h->bins[i], 0, memory_order_relaxed);
    atomic_store_explicit(&h->count, 0, memory_order_relaxed);
    atomic_store_explicit(&h->max_ns, 0, memory_order_relaxed);
    atomic_store_explicit(&h->sum_ns, 0, memory_order_relaxed);
}

static inline void rt_hist_add(rt_hist *h, int64_t ns) {
    if (ns < 0) ns = 0;
    const int64_t us = ns / 1000;
    int bin;
    if (us < RT_HIST_FINE_US) bin = (int)us;
    else if (us < RT_HIST_FINE_US + (int64_t)RT_HIST_COARSE_US * RT_HIST_COARSE_BINS)
        bin = RT_HIST_FINE_US + (int)((us - RT_HIST_FINE_US) / RT_HIST_COARSE_US);
    else bin = RT_HIST_BINS - 1;
    /* single writer: load + store is enough, and cheaper than a locked add */
    atomic_store_explicit(&h->bins[bin], atomic_load_explicit(&h->bins[bin], memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&h->count, atomic_load_explicit(&h->count, memory_order_relaxed) + 1, memory_order_relaxed);
    atomic_store_explicit(&h->sum_ns, atomic_load_explicit(&h->sum_ns, memory_order_relaxed) + ns, memory_order_relaxed);
    if (ns > atomic_load_explicit(&h->max_ns, memory_order_relaxed))
        atomic_store_explicit(&h->max_ns, ns, memory_order_relaxed);
}

/* Upper edge (us) of the bin holding quantile p (0..1); 0 when empty. */
static inline double rt_hist_quantile_us(rt_hist *h, double p) {
    uint64_t total = 0;
    for (int i = 0; i < RT_HIST_BINS; ++i) total += atomic_load_explicit(&h->bins[i], memory_order_relaxed);
    if (total == 0) return 0.0;
    double target = p * (double)total;
    uint64_t acc = 0;
    for (int i = 0; i < RT_HIST_BINS; ++i) {
        acc += atomic_load_explicit(&h->bins[i], memory_order_relaxed);
        if ((double)acc >= target && acc > 0) {
            double edge = i < RT_HIST_FINE_US ? (double)(i + 1)
                                              : (double)RT_HIST_FINE_US + (double)(i - RT_HIST_FINE_US + 1) * RT_HIST_COARSE_US;
            double mx = (double)atomic_load_explicit(&h->max_ns, memory_order_relaxed) / 1000.0;
            return edge < mx ? edge : mx;
        }
    }
    return (double)atomic_load_explicit(&h->max_ns, memory_order_relaxed) / 1000.0;
}

#endif
