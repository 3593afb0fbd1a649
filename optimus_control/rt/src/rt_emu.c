/* The HIL actuator emulator: see rt_emu.h. */
#define _GNU_SOURCE
#include "rt_emu.h"

#include "rt_loop.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double clampd(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }

static void set_rt(int prio) {
    if (prio <= 0) return;
    struct sched_param sp = {.sched_priority = prio};
    pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp); /* best effort: refused without the privilege */
}

/* ---- the pty (the adapter's USB end) ----------------------------------------------------------------- */
static int open_pty(rt_emu_bus *B, char *err, int errlen) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0) {
        snprintf(err, (size_t)errlen, "bus %d: no pseudo-terminal: %s", B->index, strerror(errno));
        if (m >= 0) close(m);
        return -1;
    }
    const char *name = ptsname(m);
    int s = name ? open(name, O_RDWR | O_NOCTTY) : -1; /* held open: the master never sees a hang-up */
    if (s < 0) {
        snprintf(err, (size_t)errlen, "bus %d: cannot open the pty's slave: %s", B->index, strerror(errno));
        close(m);
        return -1;
    }
    struct termios tio;
    if (tcgetattr(s, &tio) == 0) { /* no echo, no line editing until the host sets its own mode */
        cfmakeraw(&tio);
        tcsetattr(s, TCSANOW, &tio);
    }
    fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
    snprintf(B->tty, sizeof(B->tty), "%s", name);
    if (B->path[0]) {
        char tmp[300];
        snprintf(tmp, sizeof(tmp), "%s.new", B->path);
        unlink(tmp);
        if (symlink(B->tty, tmp) < 0 || rename(tmp, B->path) < 0) {
            snprintf(err, (size_t)errlen, "bus %d: cannot link %s to %s: %s", B->index, B->path, B->tty,
                     strerror(errno));
            close(s);
            close(m);
            return -1;
        }
    }
    B->master = m;
    B->slave = s;
    atomic_store(&B->open, 0);
    B->bitrate_code = -1;
    rt_slcan_reset(&B->parser);
    return 0;
}

static void close_pty(rt_emu_bus *B) {
    if (B->master >= 0) close(B->master);
    if (B->slave >= 0) close(B->slave);
    B->master = B->slave = -1;
}

static void put(rt_emu_bus *B, const char *s, int n) {
    if (B->out_len + n > (int)sizeof(B->out)) return; /* a burst beyond 8 KiB: dropped, as a full USB FIFO */
    memcpy(B->out + B->out_len, s, (size_t)n);
    B->out_len += n;
}

static void flush_out(rt_emu_bus *B) {
    int off = 0;
    const int64_t deadline = now_ns() + 5000000;
    while (off < B->out_len && B->master >= 0) {
        const ssize_t w = write(B->master, B->out + off, (size_t)(B->out_len - off));
        if (w > 0) {
            off += (int)w;
        } else if (w < 0 && errno == EAGAIN && now_ns() < deadline) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        } else {
            break;
        }
    }
    B->out_len = 0;
}

/* ---- one motor's frames ------------------------------------------------------------------------------ */
static int find_motor(rt_emu_bus *B, uint32_t id) {
    for (int k = 0; k < B->n; ++k)
        if ((uint32_t)B->emu->motors[B->joints[k]].motor_id == id) return k;
    return -1;
}

static void decode_cmd(const rt_mit_range *r, const uint8_t *d, double *c) {
    const uint32_t p = ((uint32_t)d[0] << 8) | d[1];
    const uint32_t v = ((uint32_t)d[2] << 4) | (d[3] >> 4);
    const uint32_t kp = ((uint32_t)(d[3] & 0xF) << 8) | d[4];
    const uint32_t kd = ((uint32_t)d[5] << 4) | (d[6] >> 4);
    const uint32_t t = ((uint32_t)(d[6] & 0xF) << 8) | d[7];
    c[1] = rt_mit_from_uint(p, r->p_min, r->p_max, 16);
    c[2] = rt_mit_from_uint(v, r->v_min, r->v_max, 12);
    c[3] = rt_mit_from_uint(kp, r->kp_min, r->kp_max, 12);
    c[4] = rt_mit_from_uint(kd, r->kd_min, r->kd_max, 12);
    c[5] = rt_mit_from_uint(t, r->t_min, r->t_max, 12);
}

/* The reply frame: id | p16 | v12 | t12 (6 bytes), Damiao: state << 4 | id, ..., MOSFET and rotor temperature. */
static int encode_reply(const rt_emu_motor_cfg *M, const rt_emu_motor_status *S, double p, double v, double t,
                        uint8_t *d) {
    const rt_mit_range *r = &M->range;
    int c;
    const uint32_t up = rt_mit_to_uint(p, r->p_min, r->p_max, 16, &c);
    const uint32_t uv = rt_mit_to_uint(v, r->v_min, r->v_max, 12, &c);
    const uint32_t ut = rt_mit_to_uint(t, r->t_min, r->t_max, 12, &c);
    if (r->damiao_reply) {
        const int code = atomic_load(&S->error_code);
        const int state = code ? code : (atomic_load(&S->enabled) ? 1 : 0);
        d[0] = (uint8_t)(((state & 0xF) << 4) | (M->motor_id & 0xF));
    } else {
        d[0] = (uint8_t)(M->motor_id & 0xFF);
    }
    d[1] = (uint8_t)(up >> 8);
    d[2] = (uint8_t)(up & 0xFF);
    d[3] = (uint8_t)(uv >> 4);
    d[4] = (uint8_t)(((uv & 0xF) << 4) | (ut >> 8));
    d[5] = (uint8_t)(ut & 0xFF);
    if (!r->damiao_reply) return 6;
    d[6] = (uint8_t)clampd(atomic_load(&S->t_mos), 0, 255);
    d[7] = (uint8_t)clampd(atomic_load(&S->t_rotor), 0, 255);
    return 8;
}

static uint32_t rnd(rt_emu_bus *B) { /* xorshift64: cheap, per bus, no lock */
    uint64_t x = B->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    B->rng = x;
    return (uint32_t)(x >> 32);
}

static int chance_ppm(rt_emu_bus *B, int ppm) { return ppm > 0 && (int)(rnd(B) % 1000000u) < ppm; }

static void on_frame(rt_emu_bus *B, const rt_can_frame *f) {
    rt_emu *e = B->emu;
    atomic_fetch_add_explicit(&B->frames_in, 1, memory_order_relaxed);
    B->burst_frames++;
    const int k = f->ext || f->rtr ? -1 : find_motor(B, f->id);
    put(B, "z\r", 2); /* transmitted on the bus */
    if (atomic_load_explicit(&B->silent, memory_order_relaxed)) return; /* a cut cable: nothing answers */
    if (k < 0) {
        atomic_fetch_add_explicit(&B->unknown_ids, 1, memory_order_relaxed);
        return;
    }
    const int j = B->joints[k];
    const rt_emu_motor_cfg *M = &e->motors[j];
    rt_emu_motor_status *S = &e->status[j];
    atomic_fetch_add_explicit(&S->frames, 1, memory_order_relaxed);
    if (atomic_load_explicit(&S->silent, memory_order_relaxed) || f->len != 8) return;
    const double *st = rt_tbuf_read(&B->state_in, NULL) + RT_EMU_ST_WORDS * k;
    double *c = B->cmd + RT_EMU_CMD_WORDS * k;
    if (atomic_exchange(&B->shift_pending[k], 0)) { /* the bus thread owns c: a requested shift is taken here */
        const int64_t bits = atomic_load(&B->shift_request[k]);
        memcpy(&c[6], &bits, sizeof(double));
    }
    const int kind = rt_mit_special_kind(f->data, f->len);
    if (kind == RT_MIT_ENTER) {
        atomic_store(&S->enabled, 1);
        atomic_fetch_add(&S->enters, 1);
        c[0] = 1.0;
        c[1] = st[0] - c[6]; /* hold where it is, no gains, until a command comes */
        c[2] = c[3] = c[4] = c[5] = 0.0;
    } else if (kind == RT_MIT_EXIT) {
        atomic_store(&S->enabled, 0);
        atomic_fetch_add(&S->exits, 1);
        c[0] = c[2] = c[3] = c[4] = c[5] = 0.0;
    } else if (kind == RT_MIT_ZERO) {
        atomic_fetch_add(&S->zeros, 1);
        c[6] = st[0]; /* the encoder's zero moves to here */
    } else {
        atomic_fetch_add_explicit(&S->commands, 1, memory_order_relaxed);
        if (atomic_load_explicit(&S->enabled, memory_order_relaxed)) {
            decode_cmd(&M->range, f->data, c);
            c[0] = 2.0; /* commanded since motor mode began */
        }
    }
    B->cmd_time[k] = (double)(now_ns() - e->t0_ns) * 1e-9;
    double *w = rt_tbuf_back(&B->cmd_out);
    memcpy(w, B->cmd, sizeof(double) * (size_t)(RT_EMU_CMD_WORDS * B->n));
    memcpy(w + RT_EMU_CMD_WORDS * B->n, B->cmd_time, sizeof(double) * (size_t)B->n);
    rt_tbuf_commit(&B->cmd_out);
    if (chance_ppm(B, atomic_load_explicit(&B->drop_ppm, memory_order_relaxed))) {
        atomic_fetch_add_explicit(&B->dropped, 1, memory_order_relaxed);
        return; /* lost on the wire */
    }
    rt_can_frame reply = {0};
    reply.id = 0; /* the host id */
    reply.len = (uint8_t)encode_reply(M, S, st[0] - c[6], st[1], st[2], reply.data);
    char line[32];
    const int n = rt_slcan_encode(&reply, line);
    B->burst_frames++;
    if (chance_ppm(B, atomic_load_explicit(&B->corrupt_ppm, memory_order_relaxed)) && n > 6) {
        line[5] = 'x'; /* not hex: the host's parser must reject the line, not misread a field */
        atomic_fetch_add_explicit(&B->corrupted, 1, memory_order_relaxed);
    }
    put(B, line, n);
    atomic_fetch_add_explicit(&S->replies, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&B->replies_out, 1, memory_order_relaxed);
}

static void on_line(void *ctx, int kind, const rt_can_frame *f, const char *line) {
    rt_emu_bus *B = ctx;
    atomic_fetch_add_explicit(&B->lines, 1, memory_order_relaxed);
    if (kind == RT_SLCAN_FRAME) {
        if (!atomic_load(&B->open)) {
            put(B, "\a", 1);
            atomic_fetch_add_explicit(&B->bad_lines, 1, memory_order_relaxed);
            return;
        }
        on_frame(B, f);
        return;
    }
    const size_t len = strlen(line);
    if (line[0] == 'S' && len == 2 && line[1] >= '0' && line[1] <= '8' && !atomic_load(&B->open)) {
        B->bitrate_code = line[1] - '0';
        put(B, "\r", 1);
    } else if (line[0] == 'O' && len == 1 && B->bitrate_code >= 0) {
        atomic_store(&B->open, 1);
        put(B, "\r", 1);
    } else if (line[0] == 'C' && len == 1) {
        atomic_store(&B->open, 0);
        put(B, "\r", 1);
    } else if (line[0] == 'V' && len == 1) {
        put(B, "V1013\r", 6);
    } else if (line[0] == 'F' && len == 1) {
        put(B, "F00\r", 4);
    } else {
        put(B, "\a", 1);
        atomic_fetch_add_explicit(&B->bad_lines, 1, memory_order_relaxed);
    }
}

static void *bus_main(void *arg) {
    rt_emu_bus *B = arg;
    set_rt(atomic_load(&B->emu->rt_priority));
    char buf[2048];
    while (!atomic_load(&B->emu->stop)) {
        const int fd = B->master;
        if (fd < 0 || atomic_load(&B->vanished)) {
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
            continue;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0) continue;
        const ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0) continue;
        const int64_t arrived = now_ns();
        B->burst_frames = 0;
        rt_slcan_feed(&B->parser, buf, (int)n, on_line, B);
        /* the wire: every frame of the burst (commands, then replies) takes its worst-case time at the bitrate
         * (135 bits with stuffing for 8 data bytes), then latency and jitter; the answers wait for it */
        int64_t wire_ns = B->bitrate > 0 ? (int64_t)B->burst_frames * 135 * 1000000000LL / B->bitrate : 0;
        const int jitter = atomic_load_explicit(&B->jitter_us, memory_order_relaxed);
        wire_ns += 1000LL * (atomic_load_explicit(&B->latency_us, memory_order_relaxed) +
                             (jitter > 0 ? (int)(rnd(B) % (uint32_t)(jitter + 1)) : 0));
        if (wire_ns > 0) {
            const int64_t due = arrived + wire_ns;
            struct timespec ts = {(time_t)(due / 1000000000LL), (long)(due % 1000000000LL)};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        }
        flush_out(B);
    }
    return NULL;
}

/* ---- the plant ------------------------------------------------------------------------------------- */
static void *plant_main(void *arg) {
    rt_emu *e = arg;
    set_rt(atomic_load(&e->rt_priority));
    const int n = e->n_joints;
    int64_t tick = -1;
    while (!atomic_load(&e->stop)) {
        if (e->tr->wait_state(e->tr->ctx, tick, 100000000LL, &e->stop) <= 0) continue;
        int64_t t = tick;
        if (e->tr->read_state(e->tr->ctx, &t, e->words) != 1 || t <= tick) continue;
        tick = t;
        atomic_fetch_add_explicit(&e->states, 1, memory_order_relaxed);
        const double now = (double)(now_ns() - e->t0_ns) * 1e-9;
        int controlled = 1;
        for (int b = 0; b < e->n_buses; ++b) {
            rt_emu_bus *B = &e->buses[b];
            const double *cmd = rt_tbuf_read(&B->cmd_out, NULL);
            double *st = rt_tbuf_back(&B->state_in);
            for (int k = 0; k < B->n; ++k) {
                const int j = B->joints[k];
                const rt_emu_motor_cfg *M = &e->motors[j];
                rt_emu_motor_status *S = &e->status[j];
                const double *c = cmd + RT_EMU_CMD_WORDS * k;
                const double sc = M->direction * M->scale;
                const double p_m = sc * (e->words[rt_sw_q(n) + j] - M->offset);
                const double v_m = sc * e->words[rt_sw_v(n) + j];
                double tau_m = 0.0;
                const int enabled = atomic_load_explicit(&S->enabled, memory_order_relaxed) && c[0] > 0.5;
                const int timed_out = enabled && M->timeout_s > 0 &&
                                      now - cmd[RT_EMU_CMD_WORDS * B->n + k] > M->timeout_s;
                atomic_store_explicit(&S->timed_out, timed_out, memory_order_relaxed);
                if (timed_out) {
                    tau_m = -M->timeout_kd * v_m;
                } else if (enabled) {
                    tau_m = c[3] * (c[1] - (p_m - c[6])) + c[4] * (c[2] - v_m) + c[5];
                }
                /* driven: commanded since motor mode began, and not by a damping frame (kp 0, kd > 0, t 0: what a
                 * host sends while its loop does not control); a torque-mode command (kp = kd = 0) drives */
                const double kp_q = (M->range.kp_max - M->range.kp_min) / 4095.0;
                const double kd_q = (M->range.kd_max - M->range.kd_min) / 4095.0;
                const double t_q = (M->range.t_max - M->range.t_min) / 4095.0;
                const int damping = c[3] < 0.5 * kp_q && c[4] > 0.5 * kd_q && fabs(c[5]) < 1.5 * t_q;
                if (!enabled || timed_out || c[0] < 1.5 || damping) controlled = 0;
                if (!isfinite(tau_m)) tau_m = 0.0;
                tau_m = clampd(tau_m, M->range.t_min, M->range.t_max);
                e->tau[j] = sc * tau_m;
                st[RT_EMU_ST_WORDS * k] = p_m;
                st[RT_EMU_ST_WORDS * k + 1] = v_m;
                st[RT_EMU_ST_WORDS * k + 2] = tau_m;
            }
            rt_tbuf_commit(&B->state_in);
        }
        /* the simulator's harness lets go of (and catches) the robot on this: every motor driven */
        e->tr->write_command(e->tr->ctx, tick, e->tau, controlled ? RT_RUNNING : RT_DAMPING, 0);
        atomic_fetch_add_explicit(&e->answers, 1, memory_order_relaxed);
        double *snap = rt_tbuf_back(&e->snapshot);
        snap[0] = (double)tick;
        memcpy(snap + 1, e->words, sizeof(double) * (size_t)e->n_words);
        memcpy(snap + 1 + e->n_words, e->tau, sizeof(double) * (size_t)n);
        rt_tbuf_commit(&e->snapshot);
    }
    if (e->tr->detach) e->tr->detach(e->tr->ctx, RT_STOPPED);
    return NULL;
}

/* ---- lifetime ---------------------------------------------------------------------------------------- */
rt_emu *rt_emu_create(rt_transport *tr, const rt_emu_motor_cfg *motors, int n_joints, int n_buses, char *err,
                      int errlen) {
    if (n_joints != tr->n_joints || n_buses < 1) {
        snprintf(err, (size_t)errlen, "%d motors for a joint bus of %d joints, %d buses", n_joints, tr->n_joints,
                 n_buses);
        return NULL;
    }
    rt_emu *e = calloc(1, sizeof(rt_emu));
    if (!e) goto oom;
    e->tr = tr;
    e->n_joints = n_joints;
    e->n_feet = tr->n_feet;
    e->n_buses = n_buses;
    e->n_words = rt_state_word_count(n_joints, tr->n_feet);
    e->motors = calloc((size_t)n_joints, sizeof(rt_emu_motor_cfg));
    e->status = calloc((size_t)n_joints, sizeof(rt_emu_motor_status));
    e->buses = calloc((size_t)n_buses, sizeof(rt_emu_bus));
    e->words = calloc((size_t)e->n_words, sizeof(double));
    e->tau = calloc((size_t)n_joints, sizeof(double));
    if (!e->motors || !e->status || !e->buses || !e->words || !e->tau) goto oom;
    memcpy(e->motors, motors, sizeof(rt_emu_motor_cfg) * (size_t)n_joints);
    for (int j = 0; j < n_joints; ++j) {
        const rt_emu_motor_cfg *M = &motors[j];
        if (M->bus < 0 || M->bus >= n_buses || rt_mit_range_valid(&M->range) < 0 || !(M->scale > 0)) {
            snprintf(err, (size_t)errlen, "joint %d: bad bus index, ranges or scale", j);
            goto fail;
        }
        rt_emu_bus *B = &e->buses[M->bus];
        if (B->n >= RT_EMU_MAX_MOTORS) {
            snprintf(err, (size_t)errlen, "bus %d: more than %d motors", M->bus, RT_EMU_MAX_MOTORS);
            goto fail;
        }
        B->joints[B->n++] = j;
        atomic_store(&e->status[j].t_mos, 35);
        atomic_store(&e->status[j].t_rotor, 30);
    }
    for (int b = 0; b < n_buses; ++b) {
        rt_emu_bus *B = &e->buses[b];
        B->emu = e;
        B->index = b;
        B->master = B->slave = -1;
        B->rng = 0x9E3779B97F4A7C15ULL ^ (uint64_t)(b + 1) * 0xBF58476D1CE4E5B9ULL;
        if (B->n == 0) {
            snprintf(err, (size_t)errlen, "bus %d has no motor", b);
            goto fail;
        }
        if (rt_tbuf_init(&B->cmd_out, (size_t)(B->n * (RT_EMU_CMD_WORDS + 1))) < 0 ||
            rt_tbuf_init(&B->state_in, (size_t)(B->n * RT_EMU_ST_WORDS)) < 0)
            goto oom;
    }
    if (rt_tbuf_init(&e->snapshot, (size_t)(1 + e->n_words + n_joints)) < 0) goto oom;
    return e;
oom:
    snprintf(err, (size_t)errlen, "out of memory");
fail:
    rt_emu_free(e);
    return NULL;
}

int rt_emu_start(rt_emu *e, const char *const *paths, int rt_priority, double first_state_timeout_s, char *err,
                 int errlen) {
    atomic_store(&e->stop, 0);
    atomic_store(&e->rt_priority, rt_priority);
    e->t0_ns = now_ns();
    /* No adapter before there is a robot: motors answer with their joint's state, and there is none yet. */
    /* a published state: tick >= 1 (a fresh joint bus holds tick 0, all zeros) */
    if (e->tr->wait_state(e->tr->ctx, 0, (int64_t)(first_state_timeout_s * 1e9), &e->stop) != 1) {
        snprintf(err, (size_t)errlen, "no state from the robot side of the joint bus within %g s", first_state_timeout_s);
        return -1;
    }
    {
        int64_t t = 0;
        if (e->tr->read_state(e->tr->ctx, &t, e->words) == 1) { /* the motors' first state, before any frame */
            const int n = e->n_joints;
            for (int b = 0; b < e->n_buses; ++b) {
                rt_emu_bus *B = &e->buses[b];
                double *st = rt_tbuf_back(&B->state_in);
                for (int k = 0; k < B->n; ++k) {
                    const rt_emu_motor_cfg *M = &e->motors[B->joints[k]];
                    const double sc = M->direction * M->scale;
                    st[RT_EMU_ST_WORDS * k] = sc * (e->words[rt_sw_q(n) + B->joints[k]] - M->offset);
                    st[RT_EMU_ST_WORDS * k + 1] = sc * e->words[rt_sw_v(n) + B->joints[k]];
                    st[RT_EMU_ST_WORDS * k + 2] = 0.0;
                }
                rt_tbuf_commit(&B->state_in);
            }
        }
    }
    for (int b = 0; b < e->n_buses; ++b) {
        rt_emu_bus *B = &e->buses[b];
        snprintf(B->path, sizeof(B->path), "%s", paths && paths[b] ? paths[b] : "");
        if (open_pty(B, err, errlen) < 0) {
            rt_emu_stop(e);
            return -1;
        }
    }
    for (int b = 0; b < e->n_buses; ++b) {
        if (pthread_create(&e->buses[b].thread, NULL, bus_main, &e->buses[b]) != 0) {
            snprintf(err, (size_t)errlen, "cannot start bus thread %d", b);
            rt_emu_stop(e);
            return -1;
        }
        e->buses[b].started = 1;
    }
    if (pthread_create(&e->plant, NULL, plant_main, e) != 0) {
        snprintf(err, (size_t)errlen, "cannot start the plant thread");
        rt_emu_stop(e);
        return -1;
    }
    e->plant_started = 1;
    return 0;
}

void rt_emu_stop(rt_emu *e) {
    atomic_store(&e->stop, 1);
    if (e->tr->interrupt) e->tr->interrupt(e->tr->ctx);
    if (e->plant_started) pthread_join(e->plant, NULL);
    e->plant_started = 0;
    for (int b = 0; b < e->n_buses; ++b) {
        rt_emu_bus *B = &e->buses[b];
        if (B->started) pthread_join(B->thread, NULL);
        B->started = 0;
        close_pty(B);
        if (B->path[0]) unlink(B->path);
    }
}

void rt_emu_free(rt_emu *e) {
    if (!e) return;
    if (e->buses)
        for (int b = 0; b < e->n_buses; ++b) {
            rt_tbuf_free(&e->buses[b].cmd_out);
            rt_tbuf_free(&e->buses[b].state_in);
        }
    rt_tbuf_free(&e->snapshot);
    free(e->motors);
    free(e->status);
    free(e->buses);
    free(e->words);
    free(e->tau);
    free(e);
}

void rt_emu_set_zero_shift(rt_emu *e, int j, double shift) {
    rt_emu_bus *B = &e->buses[e->motors[j].bus];
    for (int k = 0; k < B->n; ++k)
        if (B->joints[k] == j) {
            int64_t bits;
            memcpy(&bits, &shift, sizeof(double));
            atomic_store(&B->shift_request[k], bits);
            atomic_store(&B->shift_pending[k], 1);
        }
}

void rt_emu_set_wire(rt_emu *e, int b, long bitrate, int latency_us, int jitter_us) {
    rt_emu_bus *B = &e->buses[b];
    B->bitrate = bitrate > 0 ? bitrate : 0;
    atomic_store(&B->latency_us, latency_us > 0 ? latency_us : 0);
    atomic_store(&B->jitter_us, jitter_us > 0 ? jitter_us : 0);
}

void rt_emu_set_bus_faults(rt_emu *e, int b, int drop_ppm, int corrupt_ppm, int silent) {
    rt_emu_bus *B = &e->buses[b];
    atomic_store(&B->drop_ppm, drop_ppm);
    atomic_store(&B->corrupt_ppm, corrupt_ppm);
    atomic_store(&B->silent, silent != 0);
}

void rt_emu_vanish(rt_emu *e, int b) {
    rt_emu_bus *B = &e->buses[b];
    atomic_store(&B->vanished, 1);
    struct timespec ts = {0, 30000000}; /* the bus thread's poll times out within 20 ms */
    nanosleep(&ts, NULL);
    close_pty(B);
    if (B->path[0]) unlink(B->path);
}

int rt_emu_reappear(rt_emu *e, int b) {
    rt_emu_bus *B = &e->buses[b];
    char err[256];
    if (open_pty(B, err, sizeof(err)) < 0) return -1;
    atomic_store(&B->vanished, 0);
    return 0;
}
