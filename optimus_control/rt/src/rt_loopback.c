/* Loopback transport (see rt_loopback.h). */
#define _GNU_SOURCE
#include "rt_loopback.h"

#include <string.h>
#include <time.h>

int rt_loopback_init(rt_loopback *lb, int n_joints, int n_feet, double dt_s) {
    memset(lb, 0, sizeof(*lb));
    lb->n_joints = n_joints;
    lb->n_feet = n_feet;
    lb->n_words = rt_state_word_count(n_joints, n_feet);
    lb->dt_s = dt_s;
    if (rt_tbuf_init(&lb->state_in, (size_t)lb->n_words) < 0) return -1;
    if (rt_tbuf_init(&lb->command_out, 3u + (size_t)n_joints) < 0) {
        rt_tbuf_free(&lb->state_in);
        return -1;
    }
    /* An upright, resting IMU until Python says otherwise, in every slot. */
    for (int s = 0; s < 3; ++s) {
        double *w = lb->state_in.slots + (size_t)s * lb->state_in.n;
        w[rt_sw_quat(n_joints) + 3] = 1.0;
        w[rt_sw_acc(n_joints) + 2] = 9.81;
    }
    atomic_init(&lb->silent, 0);
    return 0;
}

void rt_loopback_free(rt_loopback *lb) {
    rt_tbuf_free(&lb->state_in);
    rt_tbuf_free(&lb->command_out);
}

static int lb_read_state(void *ctx, int64_t *tick, double *words) {
    rt_loopback *lb = ctx;
    if (atomic_load_explicit(&lb->silent, memory_order_acquire)) return 0;
    const double *src = rt_tbuf_read(&lb->state_in, NULL);
    lb->tick += 1;
    memcpy(words, src, sizeof(double) * (size_t)lb->n_words);
    words[rt_sw_time()] = (double)lb->tick * lb->dt_s;
    *tick = lb->tick;
    return 1;
}

static int lb_wait_state(void *ctx, int64_t after_tick, int64_t timeout_ns, const _Atomic int *stop) {
    rt_loopback *lb = ctx;
    (void)after_tick;
    if (!atomic_load_explicit(&lb->silent, memory_order_acquire)) return 1;
    /* Silent: sleep the timeout away in short naps so stop() stays prompt. */
    struct timespec now, end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += (time_t)(timeout_ns / 1000000000LL);
    end.tv_nsec += (long)(timeout_ns % 1000000000LL);
    if (end.tv_nsec >= 1000000000L) { end.tv_sec += 1; end.tv_nsec -= 1000000000L; }
    for (;;) {
        if (stop && atomic_load_explicit(stop, memory_order_acquire)) return -1;
        if (!atomic_load_explicit(&lb->silent, memory_order_acquire)) return 1;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec)) return 0;
        struct timespec nap = {0, 1000000L};
        clock_nanosleep(CLOCK_MONOTONIC, 0, &nap, NULL);
    }
}

static void lb_write_command(void *ctx, int64_t tick, const double *tau, int32_t loop_state, int32_t fault) {
    rt_loopback *lb = ctx;
    double *w = rt_tbuf_back(&lb->command_out);
    w[0] = (double)tick;
    w[1] = (double)loop_state;
    w[2] = (double)fault;
    memcpy(w + 3, tau, sizeof(double) * (size_t)lb->n_joints);
    rt_tbuf_commit(&lb->command_out);
}

void rt_loopback_transport(rt_loopback *lb, rt_transport *t) {
    memset(t, 0, sizeof(*t));
    t->ctx = lb;
    t->n_joints = lb->n_joints;
    t->n_feet = lb->n_feet;
    t->read_state = lb_read_state;
    t->wait_state = lb_wait_state;
    t->write_command = lb_write_command;
}
