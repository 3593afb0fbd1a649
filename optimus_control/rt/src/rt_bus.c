/* Joint bus in shared memory: layout, seqlocked packets, futex waits; and the controller-side
 * shared-memory transport of the loop. */
#define _GNU_SOURCE
#include "rt_bus.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rt_shm.h"

#define SEQLOCK_TRIES 64

int64_t rt_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint32_t align64(uint32_t n) { return (n + 63u) & ~63u; }

size_t rt_bus_layout(rt_bus_header *h, uint32_t n_joints, uint32_t n_feet) {
    memset(h, 0, sizeof(*h));
    h->magic = RT_BUS_MAGIC;
    h->version = RT_BUS_VERSION;
    h->header_bytes = RT_BUS_HEADER_BYTES;
    h->n_joints = n_joints;
    h->n_feet = n_feet;
    h->state_offset = RT_BUS_HEADER_BYTES;
    h->state_words = rt_bus_state_words(n_joints, n_feet);
    h->command_offset = align64(h->state_offset + 8u * h->state_words);
    h->command_words = rt_bus_command_words(n_joints);
    h->total_bytes = align64(h->command_offset + 8u * h->command_words);
    return (size_t)h->total_bytes;
}

const char *rt_bus_check(const rt_bus_header *h, size_t mapped_bytes) {
    if (mapped_bytes < sizeof(rt_bus_header)) return "the segment is smaller than the bus header";
    if (h->magic != RT_BUS_MAGIC) return "the segment is not an optimus joint bus (bad magic)";
    if (h->version != RT_BUS_VERSION) return "the bus layout version differs from this build's";
    rt_bus_header ref;
    size_t need = rt_bus_layout(&ref, h->n_joints, h->n_feet);
    if (h->state_offset != ref.state_offset || h->state_words != ref.state_words ||
        h->command_offset != ref.command_offset || h->command_words != ref.command_words)
        return "the bus header offsets do not match its joint and foot counts";
    if (mapped_bytes < need || h->total_bytes != need) return "the segment is smaller than its header says";
    return NULL;
}

static long futex(_Atomic uint32_t *addr, int op, uint32_t val, const struct timespec *timeout) {
    /* Shared (not FUTEX_PRIVATE): the word lives in memory mapped by two processes. */
    return syscall(SYS_futex, (uint32_t *)addr, op, val, timeout, NULL, 0);
}

void rt_bus_wake(_Atomic uint32_t *seq) { futex(seq, FUTEX_WAKE, INT32_MAX, NULL); }

void rt_bus_write(_Atomic uint32_t *seq, _Atomic uint32_t *waiters, uint64_t *packet, const uint64_t *words,
                  uint32_t count) {
    _Atomic uint64_t *dst = (_Atomic uint64_t *)packet;
    uint32_t s = atomic_load_explicit(seq, memory_order_relaxed);
    atomic_store_explicit(seq, s + 1u, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    for (uint32_t i = 0; i < count; ++i) atomic_store_explicit(&dst[i], words[i], memory_order_relaxed);
    atomic_store_explicit(seq, s + 2u, memory_order_seq_cst);
    if (atomic_load_explicit(waiters, memory_order_seq_cst) > 0) rt_bus_wake(seq);
}

int rt_bus_read(_Atomic uint32_t *seq, const uint64_t *packet, uint64_t *out, uint32_t count) {
    const _Atomic uint64_t *src = (const _Atomic uint64_t *)packet;
    for (int attempt = 0; attempt < SEQLOCK_TRIES; ++attempt) {
        uint32_t s1 = atomic_load_explicit(seq, memory_order_acquire);
        if (s1 & 1u) continue;
        for (uint32_t i = 0; i < count; ++i) out[i] = atomic_load_explicit(&src[i], memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(seq, memory_order_relaxed) == s1) return 1;
    }
    return 0;
}

static int64_t packet_tick(_Atomic uint32_t *seq, const uint64_t *packet) {
    uint64_t w;
    if (!rt_bus_read(seq, packet, &w, 1)) return INT64_MIN;
    int64_t t;
    memcpy(&t, &w, sizeof(t));
    return t;
}

int rt_bus_wait_tick(_Atomic uint32_t *seq, _Atomic uint32_t *waiters, const uint64_t *packet, int64_t min_tick,
                     int64_t timeout_ns, const _Atomic int *stop) {
    const int64_t deadline = rt_now_ns() + timeout_ns;
    for (;;) {
        if (stop && atomic_load_explicit(stop, memory_order_acquire)) return -1;
        uint32_t s = atomic_load_explicit(seq, memory_order_seq_cst);
        if (!(s & 1u) && packet_tick(seq, packet) >= min_tick) return 1;
        const int64_t left = deadline - rt_now_ns();
        if (left <= 0) return 0;
        struct timespec ts = {(time_t)(left / 1000000000LL), (long)(left % 1000000000LL)};
        atomic_fetch_add_explicit(waiters, 1u, memory_order_seq_cst);
        /* Re-check after announcing ourselves: a writer that bumped seq meanwhile makes FUTEX_WAIT return. */
        if (s & 1u) { /* writer mid-packet: let it finish without spinning hard */
            struct timespec nap = {0, 20000};
            atomic_fetch_sub_explicit(waiters, 1u, memory_order_seq_cst);
            nanosleep(&nap, NULL);
            continue;
        }
        futex(seq, FUTEX_WAIT, s, &ts);
        atomic_fetch_sub_explicit(waiters, 1u, memory_order_seq_cst);
    }
}

/* ---- ownership ------------------------------------------------------------------------------- */
static void side_lock(struct flock *fl, short type, int side) {
    memset(fl, 0, sizeof(*fl)); /* l_pid must be 0 for open-file-description locks */
    fl->l_type = type;
    fl->l_whence = SEEK_SET;
    fl->l_start = side;
    fl->l_len = 1;
}

static off_t pid_offset(int side) {
    return side == RT_BUS_ROBOT ? (off_t)offsetof(rt_bus_header, robot_pid)
                                : (off_t)offsetof(rt_bus_header, controller_pid);
}

int rt_bus_claim(int fd, int side) {
    struct flock fl;
    side_lock(&fl, F_WRLCK, side);
    if (fcntl(fd, F_OFD_SETLK, &fl) < 0) return errno == EAGAIN || errno == EACCES ? RT_BUS_OWNED : errno;
    struct stat st;
    const int32_t pid = (int32_t)getpid();
    if (fstat(fd, &st) == 0 && (size_t)st.st_size >= sizeof(rt_bus_header))
        (void)!pwrite(fd, &pid, sizeof(pid), pid_offset(side)); /* best effort: only the message uses it */
    return 0;
}

int rt_bus_side_held(int fd, int side) {
    struct flock fl;
    side_lock(&fl, F_WRLCK, side);
    if (fcntl(fd, F_OFD_GETLK, &fl) < 0) return -errno;
    return fl.l_type != F_UNLCK;
}

void rt_bus_owned_message(int fd, const char *name, int side, char *err, size_t errlen) {
    int32_t pid = 0;
    if (pread(fd, &pid, sizeof(pid), pid_offset(side)) != (ssize_t)sizeof(pid)) pid = 0;
    char owner[48];
    if (pid > 0) snprintf(owner, sizeof(owner), "process %d", (int)pid);
    else snprintf(owner, sizeof(owner), "another process");
    if (side == RT_BUS_ROBOT)
        snprintf(err, errlen,
                 "joint bus '%s': the robot side is already owned by %s, which is alive (a second robot side "
                 "would wait for a controller forever); give this robot/sim another bus_name (or namespace), "
                 "or stop %s first",
                 name, owner, owner);
    else
        snprintf(err, errlen,
                 "joint bus '%s': the controller side is already owned by %s, which is alive (two controllers "
                 "cannot drive one robot); give this controller the bus_name of its own robot side (or another "
                 "namespace), or stop %s first",
                 name, owner, owner);
}

/* ---- controller-side transport ------------------------------------------------------------- */
struct rt_shm {
    int fd;
    void *base;
    size_t size;
    rt_bus_header *h;
    uint64_t *state, *command;
    uint64_t *scratch; /* state_words + command_words */
    int n_joints, n_feet;
};

rt_shm *rt_shm_open(const char *name, int n_joints, int n_feet, int *owned, char *err, size_t errlen) {
    *owned = 0;
    char path[256];
    snprintf(path, sizeof(path), "/%s", name[0] == '/' ? name + 1 : name);
    int fd = shm_open(path, O_RDWR, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open the joint bus '%s' (/dev/shm%s): %s; start the robot side first", name,
                 path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(rt_bus_header)) {
        snprintf(err, errlen, "joint bus '%s' is empty or unreadable", name);
        close(fd);
        return NULL;
    }
    void *base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        snprintf(err, errlen, "cannot map the joint bus '%s': %s", name, strerror(errno));
        close(fd);
        return NULL;
    }
    rt_bus_header *h = base;
    const char *bad = rt_bus_check(h, (size_t)st.st_size);
    if (!bad && ((int)h->n_joints != n_joints || (int)h->n_feet != n_feet)) bad = "joint/foot counts differ";
    if (bad) {
        snprintf(err, errlen, "joint bus '%s': %s (segment: %u joints, %u feet; controller: %d joints, %d feet)",
                 name, bad, h->n_joints, h->n_feet, n_joints, n_feet);
        munmap(base, (size_t)st.st_size);
        close(fd);
        return NULL;
    }
    const int claimed = rt_bus_claim(fd, RT_BUS_CONTROLLER);
    if (claimed != 0) {
        *owned = claimed == RT_BUS_OWNED;
        if (*owned) rt_bus_owned_message(fd, name, RT_BUS_CONTROLLER, err, errlen);
        else snprintf(err, errlen, "joint bus '%s': cannot lock its controller side: %s", name, strerror(claimed));
        munmap(base, (size_t)st.st_size);
        close(fd);
        return NULL;
    }
    rt_shm *s = calloc(1, sizeof(*s));
    if (s) s->scratch = calloc((size_t)h->state_words + h->command_words, sizeof(uint64_t));
    if (!s || !s->scratch) {
        if (s) free(s);
        snprintf(err, errlen, "out of memory");
        munmap(base, (size_t)st.st_size);
        close(fd);
        return NULL;
    }
    s->fd = fd;
    s->base = base;
    s->size = (size_t)st.st_size;
    s->h = h;
    s->state = rt_bus_words(base, h->state_offset);
    s->command = rt_bus_words(base, h->command_offset);
    s->n_joints = n_joints;
    s->n_feet = n_feet;
    return s;
}

void rt_shm_close(rt_shm *s) {
    if (!s) return;
    munmap(s->base, s->size);
    close(s->fd);
    free(s->scratch);
    free(s);
}

static int shm_read_state(void *ctx, int64_t *tick, double *words) {
    rt_shm *s = ctx;
    const uint32_t n = s->h->state_words;
    if (!rt_bus_read(&s->h->state_seq, s->state, s->scratch, n)) return 0;
    int64_t t;
    memcpy(&t, &s->scratch[0], sizeof(t));
    if (t <= *tick) return 0;
    *tick = t;
    memcpy(words, s->scratch + 1, sizeof(double) * (n - 1u));
    return 1;
}

static int shm_wait_state(void *ctx, int64_t after_tick, int64_t timeout_ns, const _Atomic int *stop) {
    rt_shm *s = ctx;
    return rt_bus_wait_tick(&s->h->state_seq, &s->h->state_waiters, s->state, after_tick + 1, timeout_ns, stop);
}

static void shm_write_command(void *ctx, int64_t tick, const double *tau, int32_t loop_state, int32_t fault) {
    rt_shm *s = ctx;
    uint64_t *w = s->scratch + s->h->state_words;
    memcpy(&w[0], &tick, sizeof(tick));
    memcpy(&w[1], tau, sizeof(double) * (size_t)s->n_joints);
    atomic_store_explicit(&s->h->controller_state, loop_state, memory_order_relaxed);
    atomic_store_explicit(&s->h->controller_fault, fault, memory_order_relaxed);
    atomic_store_explicit(&s->h->controller_heartbeat_ns, rt_now_ns(), memory_order_relaxed);
    rt_bus_write(&s->h->command_seq, &s->h->command_waiters, s->command, w, s->h->command_words);
}

static void shm_detach(void *ctx, int32_t loop_state) {
    rt_shm *s = ctx;
    atomic_store_explicit(&s->h->controller_state, loop_state, memory_order_relaxed);
    atomic_store_explicit(&s->h->controller_heartbeat_ns, 0, memory_order_seq_cst);
}

static void shm_heartbeat(void *ctx, int32_t loop_state, int32_t fault) {
    rt_shm *s = ctx;
    atomic_store_explicit(&s->h->controller_state, loop_state, memory_order_relaxed);
    atomic_store_explicit(&s->h->controller_fault, fault, memory_order_relaxed);
    atomic_store_explicit(&s->h->controller_heartbeat_ns, rt_now_ns(), memory_order_relaxed);
}

static void shm_interrupt(void *ctx) {
    rt_shm *s = ctx;
    rt_bus_wake(&s->h->state_seq);
}

void rt_shm_transport(rt_shm *s, rt_transport *t) {
    memset(t, 0, sizeof(*t));
    t->ctx = s;
    t->n_joints = s->n_joints;
    t->n_feet = s->n_feet;
    t->read_state = shm_read_state;
    t->wait_state = shm_wait_state;
    t->write_command = shm_write_command;
    t->detach = shm_detach;
    t->interrupt = shm_interrupt;
    t->heartbeat = shm_heartbeat;
}
