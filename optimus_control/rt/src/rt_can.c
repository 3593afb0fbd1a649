/* CAN transport: see rt_can.h for the design. */
#define _GNU_SOURCE
#include "rt_can.h"
#include "rt_loop.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STALE_CYCLES 3   /* a loop command older than this many bus periods is not used */
#define EXIT_CYCLES 5    /* damping cycles before the exit-motor-mode frame */
#define REPLY_WINDOW 0.7 /* fraction of the period spent collecting replies */
#define RECONNECT_NS 100000000LL

/* ---- the one place where gear ratio, direction and offset apply --------------------------------- */
static inline void to_motor(const rt_can_joint_cfg *j, double q, double v, double kp, double kd, double tau,
                            rt_mit_cmd *m) {
    const double s = j->scale, d = j->direction;
    m->p = d * s * (q - j->offset);
    m->v = d * s * v;
    m->kp = kp / (s * s);
    m->kd = kd / (s * s);
    m->t = d * tau / s;
}

static inline void from_motor(const rt_can_joint_cfg *j, const rt_mit_reply *r, double *q, double *v,
                              double *tau) {
    const double s = j->scale, d = j->direction;
    *q = j->offset + d * r->p / s;
    *v = d * r->v / s;
    *tau = d * r->t * s;
}

/* ---- faults --------------------------------------------------------------------------------------- */
/* Latches the first fault: claimed with a CAS (kind -1 while its detail is written), then published. */
static void latch(rt_can *c, int kind, int joint, int bus) {
    atomic_fetch_or(&c->fault_flags, 1 << kind);
    int none = RT_CAN_FAULT_NONE;
    if (!atomic_compare_exchange_strong(&c->fault_kind, &none, -1)) return;
    atomic_store(&c->fault_joint, joint);
    atomic_store(&c->fault_bus, bus);
    atomic_store_explicit(&c->fault_kind, kind, memory_order_release);
}

int rt_can_fault_info(void *ctx, int *index, double *value) {
    rt_can *c = ctx;
    const int kind = atomic_load(&c->fault_kind);
    *index = atomic_load(&c->fault_joint);
    *value = (double)atomic_load(&c->fault_bus);
    return kind;
}

int rt_can_clear_fault(rt_can *c) {
    for (int b = 0; b < c->n_buses; ++b) {
        rt_can_bus *B = &c->buses[b];
        if (!atomic_load(&B->connected)) return -1;
        for (int k = 0; k < B->n; ++k)
            if ((B->miss[k] >= B->miss_limit && atomic_load(&B->selected[k])) || atomic_load(&B->motor_error[k]) >= 8)
                return -1;
    }
    atomic_store(&c->fault_kind, RT_CAN_FAULT_NONE);
    atomic_store(&c->fault_flags, 0);
    atomic_store(&c->fault_joint, -1);
    atomic_store(&c->fault_bus, -1);
    return 0;
}

/* ---- transport functions (loop thread) ------------------------------------------------------------- */
static int64_t mono_ns(void) { return rt_can_mono_ns(); }

static int can_read_state(void *ctx, int64_t *tick, double *words) {
    rt_can *c = ctx;
    const int n = c->n_joints;
    int any = 0;
    for (int b = 0; b < c->n_buses; ++b) {
        rt_can_bus *B = &c->buses[b];
        int fresh;
        const double *s = rt_tbuf_read(&B->state_out, &fresh);
        if (!fresh) continue;
        any = 1;
        for (int k = 0; k < B->n; ++k) {
            const int j = B->joints[k];
            c->words[rt_sw_q(n) + j] = s[1 + k];
            c->words[rt_sw_v(n) + j] = s[1 + B->n + k];
            c->words[rt_sw_tau(n) + j] = s[1 + 2 * B->n + k];
        }
    }
    if (atomic_load_explicit(&c->fault_kind, memory_order_acquire) > 0) return -1; /* -1: being latched */
    if (!any) return 0;
    /* A tick is a millisecond of the transport's clock, as a tick of the simulator's bus is a 1 ms step: the
     * loop's update period (sync_period_ticks) is then a time whatever the buses' rates and phases. */
    const int64_t elapsed_ns = mono_ns() - c->t0_ns;
    const int64_t ms = elapsed_ns / 1000000;
    c->tick = ms > c->tick ? ms : c->tick + 1;
    c->words[rt_sw_time()] = (double)elapsed_ns * 1e-9;
    memcpy(words, c->words, sizeof(double) * (size_t)c->n_words);
    *tick = c->tick;
    return 1;
}

static int can_wait_state(void *ctx, int64_t after_tick, int64_t timeout_ns, const _Atomic int *stop) {
    /* Lockstep is for simulation; a CAN bus runs on its own clock. Poll so the loop still works. */
    (void)after_tick; /* every merged state is newer than the last: the ticks are the transport's own */
    const int64_t end = mono_ns() + timeout_ns;
    rt_can *c = ctx;
    while (!atomic_load(stop)) {
        for (int b = 0; b < c->n_buses; ++b)
            if (atomic_load_explicit(&c->buses[b].state_out.mid, memory_order_relaxed) & RT_TBUF_FRESH) return 1;
        if (mono_ns() >= end) return 0;
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

/* The bus's command slot with its header filled: sequence, loop state, fault, mode (0 torque, 1 motor PD). */
static double *begin_command(rt_can *c, rt_can_bus *B, int32_t loop_state, int32_t fault, double motor_pd) {
    double *w = rt_tbuf_back(&B->command_in);
    w[0] = c->cmd_seq;
    w[1] = loop_state;
    w[2] = fault;
    w[3] = motor_pd;
    return w;
}

static void can_write_command(void *ctx, int64_t tick, const double *tau, int32_t loop_state, int32_t fault) {
    (void)tick; /* the bus threads send the newest command whatever state it answers */
    rt_can *c = ctx;
    c->cmd_seq += 1.0;
    for (int b = 0; b < c->n_buses; ++b) {
        rt_can_bus *B = &c->buses[b];
        double *w = begin_command(c, B, loop_state, fault, 0.0);
        for (int k = 0; k < B->n; ++k) w[4 + k] = tau[B->joints[k]];
        rt_tbuf_commit(&B->command_in);
    }
}

static void can_write_pd(void *ctx, int64_t tick, const double *tau_ff, const double *q_ref, const double *v_ref,
                         const double *kp, const double *kd, int32_t loop_state, int32_t fault) {
    (void)tick;
    rt_can *c = ctx;
    c->cmd_seq += 1.0;
    const double *src[5] = {tau_ff, q_ref, v_ref, kp, kd};
    for (int b = 0; b < c->n_buses; ++b) {
        rt_can_bus *B = &c->buses[b];
        double *w = begin_command(c, B, loop_state, fault, 1.0);
        for (int f = 0; f < 5; ++f)
            for (int k = 0; k < B->n; ++k) w[4 + f * B->n + k] = src[f][B->joints[k]];
        rt_tbuf_commit(&B->command_in);
    }
}

static void can_detach(void *ctx, int32_t loop_state) {
    /* A STOPPED command: the bus threads send damping from now on. */
    rt_can *c = ctx;
    c->cmd_seq += 1.0;
    for (int b = 0; b < c->n_buses; ++b) {
        rt_can_bus *B = &c->buses[b];
        double *w = rt_tbuf_back(&B->command_in);
        memset(w, 0, sizeof(double) * (4 + 5 * (size_t)B->n));
        w[0] = c->cmd_seq;
        w[1] = loop_state;
        rt_tbuf_commit(&B->command_in);
    }
}

/* ---- frame log -------------------------------------------------------------------------------------- */
static void log_frames(rt_can_bus *B, const rt_can_frame *f, int n, int rx) {
    if (!B->log) return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    const int64_t t = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    uint64_t head = atomic_load_explicit(&B->log_head, memory_order_relaxed);
    const uint64_t tail = atomic_load_explicit(&B->log_tail, memory_order_acquire);
    for (int i = 0; i < n; ++i) {
        if (head - tail >= RT_CAN_LOG_SIZE) {
            atomic_fetch_add_explicit(&B->log_dropped, (uint64_t)(n - i), memory_order_relaxed);
            break;
        }
        rt_can_log_entry *e = &B->log[head & (RT_CAN_LOG_SIZE - 1)];
        e->t_ns = t;
        e->id = f[i].id | (f[i].ext ? 0x80000000u : 0u);
        e->len = f[i].len;
        e->rx = (uint8_t)rx;
        memcpy(e->data, f[i].data, 8);
        head++;
    }
    atomic_store_explicit(&B->log_head, head, memory_order_release);
}

int rt_can_enable_log(rt_can *c) {
    for (int b = 0; b < c->n_buses; ++b) {
        if (c->buses[b].log) continue;
        c->buses[b].log = calloc(RT_CAN_LOG_SIZE, sizeof(rt_can_log_entry));
        if (!c->buses[b].log) return -1;
    }
    return 0;
}

int rt_can_drain_log(rt_can *c, int b, rt_can_log_entry *out, int max) {
    rt_can_bus *B = &c->buses[b];
    if (!B->log) return 0;
    uint64_t tail = atomic_load_explicit(&B->log_tail, memory_order_relaxed);
    const uint64_t head = atomic_load_explicit(&B->log_head, memory_order_acquire);
    int n = 0;
    while (tail < head && n < max) out[n++] = B->log[tail++ & (RT_CAN_LOG_SIZE - 1)];
    atomic_store_explicit(&B->log_tail, tail, memory_order_release);
    return n;
}

/* ---- bus thread ------------------------------------------------------------------------------------- */
#define RT_LOOP_RUNNING RT_RUNNING
#define RT_LOOP_FAULT RT_FAULT
#define RT_LOOP_REASON_JOINT_LIMIT RT_REASON_JOINT_LIMIT

static void damping_cmd(const rt_can_joint_cfg *J, rt_mit_cmd *m) {
    to_motor(J, J->offset, 0.0, 0.0, J->damping_kd, 0.0, m);
    m->p = 0.0; /* kp = 0: the position is ignored */
}

/* Builds this cycle's frames; returns how many. */
static int build_frames(rt_can_bus *B, rt_can_frame *fr, int mode) {
    rt_can *c = B->can;
    int kind = 0;
    if (mode == RT_CAN_ENTERING || B->reenter) kind = RT_MIT_ENTER;
    if (mode == RT_CAN_EXITING && B->exit_cycles >= EXIT_CYCLES) kind = RT_MIT_EXIT;
    /* loop command: fresh and RUNNING (or a joint-limit fault, where the loop damps that joint itself) */
    int use_loop = 0;
    const double *cmd = NULL;
    const double *man = NULL;
    /* A latched fault damps at once, from the bus threads themselves: no wait for the loop to see it */
    const int faulted = atomic_load_explicit(&c->fault_kind, memory_order_acquire) != RT_CAN_FAULT_NONE;
    if (mode == RT_CAN_ACTIVE && !faulted) {
        if (atomic_load(&c->source) == RT_CAN_SOURCE_MANUAL) {
            man = rt_tbuf_read(&B->manual_in, NULL);
        } else {
            int fresh;
            cmd = rt_tbuf_read(&B->command_in, &fresh);
            B->stale_cycles = fresh ? 0 : B->stale_cycles + 1;
            const int st = (int)cmd[1], reason = (int)cmd[2];
            use_loop = cmd[0] > 0 && B->stale_cycles < STALE_CYCLES &&
                       (st == RT_LOOP_RUNNING || (st == RT_LOOP_FAULT && reason == RT_LOOP_REASON_JOINT_LIMIT));
        }
    }
    for (int k = 0; k < B->n; ++k) {
        const rt_can_joint_cfg *J = &c->joints[B->joints[k]];
        rt_can_frame *f = &fr[k];
        memset(f, 0, sizeof(*f));
        f->id = (uint32_t)J->motor_id;
        f->len = 8;
        if (!atomic_load_explicit(&B->selected[k], memory_order_relaxed) && kind != RT_MIT_EXIT) {
            rt_mit_cmd zero = {0, 0, 0, 0, 0}; /* not enabled: a read, never motor mode */
            if (rt_mit_pack(&J->range, &zero, f->data)) atomic_fetch_add_explicit(&B->clamps, 1, memory_order_relaxed);
            continue;
        }
        if (kind) {
            rt_mit_special(kind, f->data);
            continue;
        }
        rt_mit_cmd m = {0, 0, 0, 0, 0};
        if (mode == RT_CAN_PASSIVE) {
            /* zero gains, zero torque: a read */
        } else if (man) {
            double q = man[k];
            if (q < J->lower) q = J->lower;
            if (q > J->upper) q = J->upper;
            to_motor(J, q, man[B->n + k], man[2 * B->n + k], man[3 * B->n + k], man[4 * B->n + k], &m);
        } else if (use_loop && cmd[3] > 0.5) { /* motor-side PD: the loop bounded q_ref and the torque */
            const int n = B->n;
            double q = cmd[4 + n + k];
            if (q < J->lower) q = J->lower;
            if (q > J->upper) q = J->upper;
            to_motor(J, q, cmd[4 + 2 * n + k], cmd[4 + 3 * n + k], cmd[4 + 4 * n + k], cmd[4 + k], &m);
        } else if (use_loop) {
            to_motor(J, J->offset, 0.0, 0.0, 0.0, cmd[4 + k], &m);
            m.p = 0.0;
        } else {
            damping_cmd(J, &m);
        }
        if (rt_mit_pack(&J->range, &m, f->data)) atomic_fetch_add_explicit(&B->clamps, 1, memory_order_relaxed);
    }
    return B->n;
}

/* `mode` is the one this cycle's frames were built for (Python may have changed it meanwhile). */
static void after_cycle_mode(rt_can_bus *B, int mode) {
    B->reenter = 0;
    if (mode == RT_CAN_ENTERING) {
        int expected = RT_CAN_ENTERING;
        atomic_compare_exchange_strong(&B->mode, &expected, RT_CAN_ACTIVE);
        B->stale_cycles = STALE_CYCLES; /* first ACTIVE cycles damp until a fresh command arrives */
    } else if (mode == RT_CAN_EXITING) {
        if (B->exit_cycles >= EXIT_CYCLES) {
            int expected = RT_CAN_EXITING;
            atomic_compare_exchange_strong(&B->mode, &expected, RT_CAN_PASSIVE);
            B->exit_cycles = 0;
        } else {
            B->exit_cycles++;
        }
    }
}

/* A reply is a frame to the host id (0: the MIT firmware's default master id; Damiao units must have their
 * master id set to 0 too) whose first byte names one of this bus's motors: a command frame of another host
 * (id = a motor id) is never taken for a reply. */
static int find_motor(const rt_can_bus *B, const rt_can_frame *f) {
    if (f->ext || f->rtr || f->len < 6 || f->id != RT_CAN_HOST_ID) return -1;
    const rt_can_joint_cfg *js = B->can->joints;
    for (int k = 0; k < B->n; ++k) {
        const rt_can_joint_cfg *J = &js[B->joints[k]];
        const int id = J->range.damiao_reply ? (f->data[0] & 0xF) : f->data[0];
        const int want = J->range.damiao_reply ? (J->motor_id & 0xF) : J->motor_id;
        if (id == want && f->len == (J->range.damiao_reply ? 8 : 6)) return k;
    }
    return -1;
}

static void try_reconnect(rt_can_bus *B, int64_t now) {
    if (now < B->next_reconnect_ns) return;
    B->next_reconnect_ns = now + RECONNECT_NS;
    char err[256];
    if (rt_can_port_open(&B->port, B->kind, B->device, B->bitrate, 20000000LL, err, sizeof(err)) == 0) {
        atomic_store(&B->connected, 1);
        atomic_fetch_add(&B->reconnects, 1);
        for (int k = 0; k < B->n; ++k) B->miss[k] = 0;
        B->stale_cycles = STALE_CYCLES; /* damping until the loop commands again: nothing stale is replayed */
        if (atomic_load(&B->mode) == RT_CAN_ACTIVE) B->reenter = 1;
    } else {
        snprintf(B->last_error, sizeof(B->last_error), "%s", err);
    }
}

/* One received frame: the motor's state, its error code and temperatures (Damiao), its reply count. Returns
 * the motor's index on the bus, -1 when the frame is no reply of this bus's motors. */
static int take_reply(rt_can_bus *B, const rt_can_frame *f) {
    rt_can *c = B->can;
    const int k = find_motor(B, f);
    if (k < 0) return -1;
    const rt_can_joint_cfg *J = &c->joints[B->joints[k]];
    rt_mit_reply rep;
    if (rt_mit_unpack(&J->range, f->data, f->len, &rep) < 0) return -1;
    from_motor(J, &rep, &B->last[k], &B->last[B->n + k], &B->last[2 * B->n + k]);
    if (rep.damiao) {
        if (rep.error >= 8) latch(c, RT_CAN_FAULT_MOTOR, B->joints[k], B->index);
        atomic_store_explicit(&B->motor_error[k], rep.error, memory_order_relaxed);
        atomic_store_explicit(&B->motor_t_mos[k], rep.t_mos, memory_order_relaxed);
        atomic_store_explicit(&B->motor_t_rotor[k], rep.t_rotor, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&B->motor_replies[k], 1, memory_order_relaxed);
    return k;
}

static void bus_cycle(rt_can_bus *B, rt_can_frame *tx, rt_can_frame *rx) {
    rt_can *c = B->can;
    const int64_t t_send = mono_ns();
    if (!atomic_load(&B->connected)) {
        try_reconnect(B, t_send);
        return;
    }
    /* Replies that arrived after the previous cycle's deadline: they do not count as answers to this cycle's
     * burst (a late motor must not look punctual: no complete cycle, no round trip), but the motor is not
     * silent either: its miss count restarts. Only a motor with no reply at all for miss_limit cycles (the bus's
     * setting, default 3) faults; a reply past 70 % of the period (a preempted bus thread or a slow motor on a loaded machine without real-time
     * priority) is late, not missing. */
    const int late = rt_can_port_recv(&B->port, rx, RT_CAN_RX_MAX, 0, t_send);
    if (late > 0) {
        log_frames(B, rx, late, 1);
        for (int i = 0; i < late; ++i) {
            const int k = take_reply(B, &rx[i]);
            if (k < 0) continue;
            B->miss[k] = 0;
            atomic_fetch_add_explicit(&B->late, 1, memory_order_relaxed);
        }
    }
    const int mode = atomic_load(&B->mode);
    const int nf = build_frames(B, tx, mode);
    const int sent = rt_can_port_send(&B->port, tx, nf);
    if (sent == 0) log_frames(B, tx, nf, 0);
    const int64_t deadline = t_send + (int64_t)((double)B->period_ns * REPLY_WINDOW);
    int got[RT_CAN_MAX_MOTORS] = {0};
    int n_got = 0;
    int64_t t_last = t_send;
    unsigned status = B->port.status;
    if (sent == 0) {
        while (n_got < B->n && mono_ns() < deadline) {
            const int r = rt_can_port_recv(&B->port, rx, RT_CAN_RX_MAX, B->n - n_got, deadline);
            status |= B->port.status;
            log_frames(B, rx, r, 1);
            for (int i = 0; i < r; ++i) {
                const int k = take_reply(B, &rx[i]);
                if (k < 0) {
                    if (find_motor(B, &rx[i]) < 0) atomic_fetch_add_explicit(&B->unknown, 1, memory_order_relaxed);
                    continue;
                }
                if (!got[k]) {
                    got[k] = 1;
                    n_got++;
                    t_last = mono_ns();
                }
            }
            if (status & (RT_CAN_GONE | RT_CAN_BUS_OFF)) break;
        }
    } else {
        /* a gone adapter, or (SocketCAN ENOBUFS) a full tx queue: the frames are dropped, never queued for a
         * later cycle; the motors then count as missing this cycle */
        status |= B->port.status;
        atomic_fetch_add_explicit(&B->tx_errors, 1, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&B->cycles, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&B->replies, (uint64_t)n_got, memory_order_relaxed);
    if (n_got == B->n) {
        rt_hist_add(&B->rtt, t_last - t_send);
        atomic_fetch_add_explicit(&B->complete_cycles, 1, memory_order_relaxed);
    }
    if (status & (RT_CAN_GONE | RT_CAN_BUS_OFF)) {
        rt_can_port_close(&B->port);
        atomic_store(&B->connected, 0);
        B->next_reconnect_ns = mono_ns() + RECONNECT_NS;
        latch(c, (status & RT_CAN_BUS_OFF) ? RT_CAN_FAULT_BUS_OFF : RT_CAN_FAULT_GONE, -1, B->index);
        return;
    }
    for (int k = 0; k < B->n; ++k) {
        if (got[k]) {
            B->miss[k] = 0;
            continue;
        }
        atomic_fetch_add_explicit(&B->missing, 1, memory_order_relaxed);
        /* a motor left out of motor mode (rt_can_select) may be absent: its silence is counted, not a fault */
        if (++B->miss[k] >= B->miss_limit && atomic_load_explicit(&B->selected[k], memory_order_relaxed))
            latch(c, RT_CAN_FAULT_NO_REPLY, B->joints[k], B->index);
    }
    after_cycle_mode(B, mode);
    double *s = rt_tbuf_back(&B->state_out);
    s[0] = (double)atomic_load_explicit(&B->cycles, memory_order_relaxed);
    memcpy(s + 1, B->last, sizeof(double) * 3 * (size_t)B->n);
    if (n_got > 0) {
        rt_tbuf_commit(&B->state_out);
        double *m = rt_tbuf_back(&B->monitor_out);
        memcpy(m, s, sizeof(double) * (1 + 3 * (size_t)B->n));
        rt_tbuf_commit(&B->monitor_out);
    }
}

static void *bus_main(void *arg) {
    rt_can_bus *B = arg;
    rt_can *c = B->can;
    const int prio = atomic_load(&c->rt_priority);
    if (prio > 0) {
        struct sched_param sp = {.sched_priority = prio};
        pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp); /* refused without CAP_SYS_NICE: best effort */
    }
    if (c->cpu_first >= 0) {
        const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET((int)((c->cpu_first + B->index) % (ncpu > 0 ? ncpu : 1)), &set);
        pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    }
    rt_can_frame tx[RT_CAN_MAX_MOTORS], rx[RT_CAN_RX_MAX];
    int64_t next = mono_ns();
    while (!atomic_load_explicit(&c->stop, memory_order_acquire)) {
        bus_cycle(B, tx, rx);
        next += B->period_ns;
        const int64_t now = mono_ns();
        if (now > next) { /* late: skip the releases already past, never burst */
            atomic_fetch_add_explicit(&B->overruns, 1, memory_order_relaxed);
            while (next < now) next += B->period_ns;
        }
        struct timespec ts = {(time_t)(next / 1000000000LL), (long)(next % 1000000000LL)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
        }
    }
    return NULL;
}

/* ---- lifecycle (not real-time) ---------------------------------------------------------------------- */
rt_can *rt_can_create(int n_joints, int n_feet, const rt_can_bus_cfg *buses, int n_buses,
                      const rt_can_joint_cfg *joints, char *err, int errlen) {
    if (n_joints < 1 || n_buses < 1) {
        snprintf(err, (size_t)errlen, "need at least one joint and one bus");
        return NULL;
    }
    rt_can *c = calloc(1, sizeof(rt_can));
    if (!c) goto oom;
    c->n_joints = n_joints;
    c->n_feet = n_feet;
    c->n_buses = n_buses;
    c->n_words = rt_state_word_count(n_joints, n_feet);
    c->joints = calloc((size_t)n_joints, sizeof(rt_can_joint_cfg));
    c->buses = calloc((size_t)n_buses, sizeof(rt_can_bus));
    c->words = calloc((size_t)c->n_words, sizeof(double));
    if (!c->joints || !c->buses || !c->words) goto oom;
    memcpy(c->joints, joints, sizeof(rt_can_joint_cfg) * (size_t)n_joints);
    c->words[rt_sw_quat(n_joints) + 3] = 1.0; /* no IMU on the CAN buses: identity until the IMU input exists */
    atomic_store(&c->fault_joint, -1);
    atomic_store(&c->fault_bus, -1);
    int seen[RT_CAN_MAX_MOTORS * 64];
    memset(seen, 0, sizeof(seen));
    for (int b = 0; b < n_buses; ++b) {
        rt_can_bus *B = &c->buses[b];
        B->can = c;
        B->index = b;
        B->port.fd = -1;
        if (rt_can_port_parse_url(buses[b].url, &B->kind, B->device, sizeof(B->device), err, errlen) < 0) goto fail;
        if (!(buses[b].rate_hz > 0 && buses[b].rate_hz <= 10000)) {
            snprintf(err, (size_t)errlen, "bus %d: rate %g Hz out of (0, 10000]", b, buses[b].rate_hz);
            goto fail;
        }
        if (buses[b].miss_limit < 0) {
            snprintf(err, (size_t)errlen, "bus %d: fault_after_missed_cycles %d must be >= 1", b, buses[b].miss_limit);
            goto fail;
        }
        B->miss_limit = buses[b].miss_limit ? buses[b].miss_limit : RT_CAN_MISS_LIMIT;
        B->bitrate = buses[b].bitrate;
        B->period_ns = (int64_t)llround(1e9 / buses[b].rate_hz);
    }
    for (int j = 0; j < n_joints; ++j) {
        const rt_can_joint_cfg *J = &joints[j];
        if (J->bus < 0 || J->bus >= n_buses) {
            snprintf(err, (size_t)errlen, "joint %d: bus %d out of range", j, J->bus);
            goto fail;
        }
        if (rt_mit_range_valid(&J->range) < 0 || !(J->scale > 0) || (J->direction != 1.0 && J->direction != -1.0) ||
            !isfinite(J->offset) || !(J->upper >= J->lower) || !(J->damping_kd >= 0)) {
            snprintf(err, (size_t)errlen, "joint %d: invalid ranges, scale, direction, offset, limits or damping", j);
            goto fail;
        }
        if (J->motor_id < 1 || J->motor_id > 0x7FF) {
            snprintf(err, (size_t)errlen, "joint %d: motor id %d out of [1, 0x7FF]", j, J->motor_id);
            goto fail;
        }
        rt_can_bus *B = &c->buses[J->bus];
        if (B->n >= RT_CAN_MAX_MOTORS) {
            snprintf(err, (size_t)errlen, "bus %d: more than %d motors", J->bus, RT_CAN_MAX_MOTORS);
            goto fail;
        }
        for (int k = 0; k < B->n; ++k)
            if ((c->joints[B->joints[k]].motor_id & 0xFF) == (J->motor_id & 0xFF)) {
                snprintf(err, (size_t)errlen, "bus %d: joints %d and %d share the reply id %d", J->bus, B->joints[k],
                         j, J->motor_id & 0xFF);
                goto fail;
            }
        atomic_store(&B->selected[B->n], 1);
        B->joints[B->n++] = j;
    }
    for (int b = 0; b < n_buses; ++b) {
        rt_can_bus *B = &c->buses[b];
        if (B->n == 0) {
            snprintf(err, (size_t)errlen, "bus %d has no motor", b);
            goto fail;
        }
        if (rt_tbuf_init(&B->command_in, 4 + 5 * (size_t)B->n) < 0 || rt_tbuf_init(&B->manual_in, 5 * (size_t)B->n) < 0 ||
            rt_tbuf_init(&B->state_out, 1 + 3 * (size_t)B->n) < 0 || rt_tbuf_init(&B->monitor_out, 1 + 3 * (size_t)B->n) < 0)
            goto oom;
        rt_hist_reset(&B->rtt);
    }
    c->tr.ctx = c;
    c->tr.n_joints = n_joints;
    c->tr.n_feet = n_feet;
    c->tr.read_state = can_read_state;
    c->tr.wait_state = can_wait_state;
    c->tr.write_command = can_write_command;
    c->tr.detach = can_detach;
    c->tr.interrupt = NULL;
    c->tr.heartbeat = NULL;
    c->tr.fault_info = rt_can_fault_info;
    c->tr.write_pd = can_write_pd;
    return c;
oom:
    snprintf(err, (size_t)errlen, "out of memory");
fail:
    rt_can_free(c);
    return NULL;
}

int rt_can_start(rt_can *c, int rt_priority, int cpu_first, int64_t open_timeout_ns, char *err, int errlen) {
    atomic_store(&c->stop, 0);
    atomic_store(&c->rt_priority, rt_priority);
    c->cpu_first = cpu_first;
    c->t0_ns = mono_ns();
    for (int b = 0; b < c->n_buses; ++b) {
        rt_can_bus *B = &c->buses[b];
        if (rt_can_port_open(&B->port, B->kind, B->device, B->bitrate, open_timeout_ns, err, errlen) < 0) {
            for (int k = 0; k < b; ++k) rt_can_port_close(&c->buses[k].port);
            return -1;
        }
        atomic_store(&B->connected, 1);
        atomic_store(&B->mode, RT_CAN_PASSIVE);
        for (int k = 0; k < B->n; ++k) B->miss[k] = 0;
    }
    for (int b = 0; b < c->n_buses; ++b) {
        rt_can_bus *B = &c->buses[b];
        if (pthread_create(&B->thread, NULL, bus_main, B) != 0) {
            snprintf(err, (size_t)errlen, "cannot start the thread of bus %d", b);
            rt_can_stop(c);
            return -1;
        }
        B->started = 1;
    }
    return 0;
}

void rt_can_stop(rt_can *c) {
    /* Motors still in motor mode get their damping cycles and the exit frame first (bounded wait). */
    int64_t longest = 0;
    int any = 0;
    for (int b = 0; b < c->n_buses; ++b) {
        rt_can_bus *B = &c->buses[b];
        if (!B->started || atomic_load(&B->mode) == RT_CAN_PASSIVE) continue;
        B->exit_cycles = 0;
        atomic_store(&B->mode, RT_CAN_EXITING);
        any = 1;
        if (B->period_ns > longest) longest = B->period_ns;
    }
    const int64_t deadline = mono_ns() + (EXIT_CYCLES + 5) * longest + 200000000LL;
    while (any && mono_ns() < deadline) {
        any = 0;
        for (int b = 0; b < c->n_buses; ++b)
            if (c->buses[b].started && atomic_load(&c->buses[b].mode) != RT_CAN_PASSIVE) any = 1;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    atomic_store_explicit(&c->stop, 1, memory_order_release);
    for (int b = 0; b < c->n_buses; ++b) {
        rt_can_bus *B = &c->buses[b];
        if (B->started) pthread_join(B->thread, NULL);
        B->started = 0;
        rt_can_port_close(&B->port);
        atomic_store(&B->connected, 0);
    }
}

void rt_can_free(rt_can *c) {
    if (!c) return;
    if (c->buses) {
        rt_can_stop(c);
        for (int b = 0; b < c->n_buses; ++b) {
            rt_tbuf_free(&c->buses[b].command_in);
            rt_tbuf_free(&c->buses[b].manual_in);
            rt_tbuf_free(&c->buses[b].state_out);
            rt_tbuf_free(&c->buses[b].monitor_out);
            free(c->buses[b].log);
        }
    }
    free(c->buses);
    free(c->joints);
    free(c->words);
    free(c);
}

int rt_can_select(rt_can *c, const int *selected) {
    for (int b = 0; b < c->n_buses; ++b)
        if (atomic_load(&c->buses[b].mode) != RT_CAN_PASSIVE) return -1;
    for (int b = 0; b < c->n_buses; ++b) {
        rt_can_bus *B = &c->buses[b];
        for (int k = 0; k < B->n; ++k) atomic_store(&B->selected[k], selected[B->joints[k]] ? 1 : 0);
    }
    return 0;
}

void rt_can_set_mode(rt_can *c, int mode) {
    for (int b = 0; b < c->n_buses; ++b) {
        c->buses[b].exit_cycles = 0;
        atomic_store(&c->buses[b].mode, mode);
    }
}

void rt_can_set_manual(rt_can *c, const double *q, const double *v, const double *kp, const double *kd,
                       const double *tau) {
    for (int b = 0; b < c->n_buses; ++b) {
        rt_can_bus *B = &c->buses[b];
        double *w = rt_tbuf_back(&B->manual_in);
        for (int k = 0; k < B->n; ++k) {
            const int j = B->joints[k];
            w[k] = q[j];
            w[B->n + k] = v[j];
            w[2 * B->n + k] = kp[j];
            w[3 * B->n + k] = kd[j];
            w[4 * B->n + k] = tau[j];
        }
        rt_tbuf_commit(&B->manual_in);
    }
    atomic_store(&c->source, RT_CAN_SOURCE_MANUAL);
}
