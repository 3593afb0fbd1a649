/* The joint bus in POSIX shared memory: segment layout, seqlocked packets and futex wake-ups.
 * Used by both sides: the robot side (Python RobotBus via the extension) and the controller side (the
 * shared-memory transport of the loop). The layout is documented in rt/README.md; all integers and
 * floats are native (little-endian on the supported hosts), every packet word is 8 bytes.
 *
 * Packets are seqlocked: the single writer makes the sequence odd, writes the words, makes it even; a
 * reader retries while the sequence is odd or changed (a bounded number of times, then gives up for
 * this tick instead of spinning). The sequence words are also the futex words waiters sleep on.
 */
#ifndef OPTIMUS_RT_BUS_H
#define OPTIMUS_RT_BUS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define RT_BUS_MAGIC 0x313053554254504FULL /* the bytes "OPTBUS01" */
#define RT_BUS_VERSION 1u
#define RT_BUS_HEADER_BYTES 256u

typedef struct {
    uint64_t magic;                  /*   0 */
    uint32_t version;                /*   8 */
    uint32_t header_bytes;           /*  12 */
    uint32_t n_joints;               /*  16 */
    uint32_t n_feet;                 /*  20 */
    uint32_t state_offset;           /*  24: bytes from the segment start */
    uint32_t state_words;            /*  28: 8-byte words in the state packet (tick included) */
    uint32_t command_offset;         /*  32 */
    uint32_t command_words;          /*  36 */
    uint64_t total_bytes;            /*  40 */
    int32_t robot_pid;               /*  48 */
    int32_t controller_pid;          /*  52 */
    uint8_t pad0[8];                 /*  56 */
    _Atomic uint32_t state_seq;      /*  64: seqlock + futex word of the state packet */
    _Atomic uint32_t state_waiters;  /*  68 */
    uint8_t pad1[56];                /*  72 */
    _Atomic uint32_t command_seq;    /* 128: seqlock + futex word of the command packet */
    _Atomic uint32_t command_waiters;/* 132 */
    uint8_t pad2[56];                /* 136 */
    _Atomic int32_t controller_state;        /* 192: rt_loop_state of the controller */
    _Atomic int32_t controller_fault;        /* 196: rt_fault code (0 none) */
    _Atomic int64_t controller_heartbeat_ns; /* 200: CLOCK_MONOTONIC of its last answer, 0 = detached */
    uint8_t pad3[48];                /* 208 */
} rt_bus_header;

_Static_assert(sizeof(rt_bus_header) == RT_BUS_HEADER_BYTES, "bus header must be 256 bytes");

/* State packet words: [0] tick (int64), then the state words of rt_transport.h (time, q, v, ...).
 * Command packet words: [0] tick answered (int64), [1..n] tau. */
static inline uint32_t rt_bus_state_words(uint32_t n_joints, uint32_t n_feet);
static inline uint32_t rt_bus_command_words(uint32_t n_joints) { return 1u + n_joints; }

/* Fills a header for a new segment; returns the total size in bytes. */
size_t rt_bus_layout(rt_bus_header *h, uint32_t n_joints, uint32_t n_feet);
/* Checks a mapped segment; returns NULL or a message. */
const char *rt_bus_check(const rt_bus_header *h, size_t mapped_bytes);

static inline uint64_t *rt_bus_words(void *base, uint32_t offset) { return (uint64_t *)((char *)base + offset); }

/* Seqlock write of `count` words (tick first) into a packet; wakes waiters of seq. */
void rt_bus_write(_Atomic uint32_t *seq, _Atomic uint32_t *waiters, uint64_t *packet, const uint64_t *words,
                  uint32_t count);
/* Seqlock read; returns 1 on a consistent copy, 0 if the writer kept it busy (give up this time). */
int rt_bus_read(_Atomic uint32_t *seq, const uint64_t *packet, uint64_t *out, uint32_t count);
/* Blocks until the int64 tick in word 0 of the packet is >= min_tick or timeout_ns elapses (no spinning:
 * sleeps on the futex of seq). Returns 1 when reached, 0 on timeout, -1 if `stop` became non-zero. */
int rt_bus_wait_tick(_Atomic uint32_t *seq, _Atomic uint32_t *waiters, const uint64_t *packet, int64_t min_tick,
                     int64_t timeout_ns, const _Atomic int *stop);
/* Wakes every waiter of seq (used to interrupt a wait on stop). */
void rt_bus_wake(_Atomic uint32_t *seq);

int64_t rt_now_ns(void); /* CLOCK_MONOTONIC */

/* Ownership: one process per side. A side is claimed with an open-file-description lock (F_OFD_SETLK)
 * on one byte of the segment file (byte RT_BUS_ROBOT or RT_BUS_CONTROLLER), held as long as the
 * claiming descriptor (or a dup of it) is open. The kernel drops it when the owner dies, however it
 * dies, so a crashed node's bus is free again at once; no pid is ever probed for liveness. The owner's
 * pid is also written into the header (robot_pid / controller_pid), for the refusal message only. */
enum { RT_BUS_ROBOT = 0, RT_BUS_CONTROLLER = 1 };

/* Claims `side` of the segment open on fd and records this process's pid in the header (if the file is
 * big enough to hold one). Returns 0, RT_BUS_OWNED when another opening holds it (a live process), or
 * an errno. */
#define RT_BUS_OWNED (-1)
int rt_bus_claim(int fd, int side);
/* 1 if another opening of the file holds `side`, 0 if not, or -errno. */
int rt_bus_side_held(int fd, int side);
/* The refusal message: names the bus, the side, the owner's recorded pid and what to do. */
void rt_bus_owned_message(int fd, const char *name, int side, char *err, size_t errlen);

#include "rt_transport.h"
static inline uint32_t rt_bus_state_words(uint32_t n_joints, uint32_t n_feet) {
    return 1u + (uint32_t)rt_state_word_count((int)n_joints, (int)n_feet);
}

#endif
