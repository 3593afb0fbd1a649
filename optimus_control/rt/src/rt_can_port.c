/* CAN adapters: SLCAN serial tty and SocketCAN raw socket. See rt_can_port.h. */
#define _GNU_SOURCE
#include "rt_can_port.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <linux/can.h>
#include <linux/can/error.h>
#include <linux/can/raw.h>

int64_t rt_can_mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int rt_can_port_parse_url(const char *url, int *kind, char *device, int device_len, char *err, int errlen) {
    const char *colon = strchr(url, ':');
    if (!colon || colon[1] == '\0') {
        snprintf(err, (size_t)errlen, "bus url '%s' must be 'socketcan:<interface>' or 'slcan:<tty path>'", url);
        return -1;
    }
    const size_t scheme = (size_t)(colon - url);
    if (scheme == 5 && strncmp(url, "slcan", 5) == 0) *kind = RT_CAN_SLCAN;
    else if (scheme == 9 && strncmp(url, "socketcan", 9) == 0) *kind = RT_CAN_SOCKETCAN;
    else {
        snprintf(err, (size_t)errlen, "bus url '%s': unknown scheme '%.*s' (use 'socketcan' or 'slcan')", url,
                 (int)scheme, url);
        return -1;
    }
    if (strlen(colon + 1) >= (size_t)device_len) {
        snprintf(err, (size_t)errlen, "bus url '%s': device name too long", url);
        return -1;
    }
    strcpy(device, colon + 1);
    return 0;
}

/* ---- SLCAN --------------------------------------------------------------------------------------- */
typedef struct {
    rt_can_port *p;
    int acks, errors;
    int first; /* the first answer seen: 1 ack, 2 error (what a command's outcome is) */
} slcan_ctx;

static void slcan_event(void *c, int kind, const rt_can_frame *f, const char *line) {
    slcan_ctx *s = c;
    rt_can_port *p = s->p;
    switch (kind) {
    case RT_SLCAN_FRAME:
        if (p->rx && p->rx_n < p->rx_max) p->rx[p->rx_n++] = *f;
        break;
    case RT_SLCAN_ACK:
        s->acks++;
        if (!s->first) s->first = 1;
        break;
    case RT_SLCAN_ERROR:
        s->errors++;
        if (!s->first) s->first = 2;
        p->adapter_errors++;
        p->status |= RT_CAN_ADAPTER_ERROR;
        break;
    case RT_SLCAN_REPLY:
        if (line[0] == 'V' || line[0] == 'v') {
            const size_t ll = strlen(line);
            memcpy(p->version, line, ll < sizeof(p->version) - 1 ? ll : sizeof(p->version) - 1);
            p->version[ll < sizeof(p->version) - 1 ? ll : sizeof(p->version) - 1] = '\0';
            s->acks++;
            if (!s->first) s->first = 1;
        }
        break;
    default:
        break;
    }
}

static int write_all(int fd, const char *buf, size_t n) {
    size_t done = 0;
    int spins = 0;
    while (done < n) {
        ssize_t w = write(fd, buf + done, n - done);
        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN && ++spins < 3) { /* a full tty: wait at most ~3 ms, then give up */
            struct pollfd pf = {fd, POLLOUT, 0};
            poll(&pf, 1, 1);
            continue;
        }
        return -1;
    }
    return 0;
}

/* Sends one command line and waits for its answer ('\r' or a V line: 1; '\a': 0; nothing: -1). */
static int slcan_command(rt_can_port *p, const char *cmd, int64_t timeout_ns) {
    if (write_all(p->fd, cmd, strlen(cmd)) < 0) return -1;
    slcan_ctx s = {p, 0, 0, 0};
    const int64_t deadline = rt_can_mono_ns() + timeout_ns;
    char buf[256];
    while (s.first == 0) {
        const int64_t left = deadline - rt_can_mono_ns();
        if (left <= 0) return -1;
        struct pollfd pf = {p->fd, POLLIN, 0};
        const int r = poll(&pf, 1, (int)(left / 1000000) + 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        if (pf.revents & (POLLHUP | POLLERR | POLLNVAL)) return -1;
        const ssize_t got = read(p->fd, buf, sizeof(buf));
        if (got <= 0) {
            if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            return -1;
        }
        rt_slcan_feed(&p->parser, buf, (int)got, slcan_event, &s);
    }
    return s.first == 1 ? 1 : 0;
}

static int open_slcan(rt_can_port *p, int64_t timeout_ns, char *err, int errlen) {
    const int code = rt_slcan_bitrate_code(p->bitrate);
    if (code < 0) {
        snprintf(err, (size_t)errlen, "slcan:%s: bitrate %ld has no SLCAN code (S0-S8: 10k 20k 50k 100k 125k 250k 500k 1M)",
                 p->device, p->bitrate);
        return -1;
    }
    p->fd = open(p->device, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (p->fd < 0) {
        snprintf(err, (size_t)errlen, "slcan:%s: cannot open: %s", p->device, strerror(errno));
        return -1;
    }
    struct termios tio;
    if (tcgetattr(p->fd, &tio) == 0) {
        cfmakeraw(&tio);
        tio.c_cc[VMIN] = 0;
        tio.c_cc[VTIME] = 0;
        cfsetspeed(&tio, B115200); /* USB CDC adapters ignore it */
        tcsetattr(p->fd, TCSANOW, &tio);
        tcflush(p->fd, TCIOFLUSH); /* nothing queued before this open is ever sent */
    }
    rt_slcan_reset(&p->parser);
    /* Close first (the adapter may still be open from a previous run); its answer does not matter. */
    slcan_command(p, "C\r", timeout_ns / 4);
    char cmd[16];
    snprintf(cmd, sizeof(cmd), "S%d\r", code);
    const char *step = cmd;
    int r = slcan_command(p, cmd, timeout_ns);
    if (r == 1) {
        step = "V\r";
        slcan_command(p, "V\r", timeout_ns / 4); /* optional: older adapters may not answer */
        step = "O\r";
        r = slcan_command(p, "O\r", timeout_ns);
    }
    if (r != 1) {
        snprintf(err, (size_t)errlen, "slcan:%s: the adapter %s '%.*s'", p->device,
                 r == 0 ? "refused (\\a)" : "did not answer", (int)strlen(step) - 1, step);
        close(p->fd);
        p->fd = -1;
        return -1;
    }
    return 0;
}

/* ---- SocketCAN ------------------------------------------------------------------------------------- */
static int open_socketcan(rt_can_port *p, char *err, int errlen) {
    p->fd = socket(PF_CAN, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, CAN_RAW);
    if (p->fd < 0) {
        snprintf(err, (size_t)errlen, "socketcan:%s: cannot create a CAN socket: %s (is the can module loaded?)",
                 p->device, strerror(errno));
        return -1;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    const size_t dl = strlen(p->device);
    memcpy(ifr.ifr_name, p->device, dl < IFNAMSIZ - 1 ? dl : IFNAMSIZ - 1);
    if (ioctl(p->fd, SIOCGIFINDEX, &ifr) < 0) {
        snprintf(err, (size_t)errlen, "socketcan:%s: no such interface (%s); bring it up with 'ip link set %s up type can bitrate %ld restart-ms 100'",
                 p->device, strerror(errno), p->device, p->bitrate);
        close(p->fd);
        p->fd = -1;
        return -1;
    }
    can_err_mask_t mask = CAN_ERR_BUSOFF | CAN_ERR_CRTL | CAN_ERR_RESTARTED;
    setsockopt(p->fd, SOL_CAN_RAW, CAN_RAW_ERR_FILTER, &mask, sizeof(mask));
    struct sockaddr_can addr;
    memset(&addr, 0, sizeof(addr));
    addr.can_family = AF_CAN;
    addr.can_ifindex = ifr.ifr_ifindex;
    if (bind(p->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        snprintf(err, (size_t)errlen, "socketcan:%s: bind: %s", p->device, strerror(errno));
        close(p->fd);
        p->fd = -1;
        return -1;
    }
    return 0;
}

int rt_can_port_open(rt_can_port *p, int kind, const char *device, long bitrate, int64_t timeout_ns, char *err,
                     int errlen) {
    p->kind = kind;
    p->fd = -1;
    p->bitrate = bitrate;
    p->status = 0;
    p->rx = NULL;
    p->rx_n = p->rx_max = 0;
    p->version[0] = '\0';
    snprintf(p->device, sizeof(p->device), "%s", device);
    if (kind == RT_CAN_SLCAN) return open_slcan(p, timeout_ns, err, errlen);
    if (kind == RT_CAN_SOCKETCAN) return open_socketcan(p, err, errlen);
    snprintf(err, (size_t)errlen, "unknown adapter kind %d", kind);
    return -1;
}

void rt_can_port_close(rt_can_port *p) {
    if (p->fd < 0) return;
    if (p->kind == RT_CAN_SLCAN) write_all(p->fd, "C\r", 2); /* best effort: the tty may be gone */
    close(p->fd);
    p->fd = -1;
}

int rt_can_port_send(rt_can_port *p, const rt_can_frame *frames, int n) {
    if (p->fd < 0) {
        p->status |= RT_CAN_GONE;
        return -1;
    }
    if (p->kind == RT_CAN_SLCAN) {
        char buf[64 * 32];
        int k = 0;
        for (int i = 0; i < n; ++i) {
            if (k + 32 > (int)sizeof(buf)) {
                if (write_all(p->fd, buf, (size_t)k) < 0) goto gone;
                k = 0;
            }
            k += rt_slcan_encode(&frames[i], buf + k);
        }
        if (k && write_all(p->fd, buf, (size_t)k) < 0) goto gone;
        return 0;
    gone: /* EIO / EBADF / a tty that stays full: the adapter is unusable (closed and reopened) */
        p->status |= RT_CAN_GONE;
        return -1;
    }
    for (int i = 0; i < n; ++i) {
        struct can_frame cf;
        memset(&cf, 0, sizeof(cf));
        cf.can_id = frames[i].id | (frames[i].ext ? CAN_EFF_FLAG : 0u) | (frames[i].rtr ? CAN_RTR_FLAG : 0u);
        cf.len = frames[i].len;
        memcpy(cf.data, frames[i].data, 8);
        ssize_t w;
        do {
            w = write(p->fd, &cf, sizeof(cf));
        } while (w < 0 && errno == EINTR);
        if (w != (ssize_t)sizeof(cf)) {
            if (errno == ENETDOWN || errno == ENODEV || errno == ENXIO) p->status |= RT_CAN_GONE;
            return -1; /* ENOBUFS: a full queue; the frame is dropped, never queued for later */
        }
    }
    return 0;
}

static int read_socketcan(rt_can_port *p) {
    for (;;) {
        struct can_frame cf;
        const ssize_t r = read(p->fd, &cf, sizeof(cf));
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR) return 0;
            p->status |= RT_CAN_GONE;
            return -1;
        }
        if (r != (ssize_t)sizeof(cf)) continue;
        p->reads++;
        if (cf.can_id & CAN_ERR_FLAG) {
            if (cf.can_id & CAN_ERR_BUSOFF) {
                p->status |= RT_CAN_BUS_OFF;
                p->bus_off_events++;
            }
            continue;
        }
        if (p->rx_n < p->rx_max) {
            rt_can_frame *f = &p->rx[p->rx_n++];
            memset(f, 0, sizeof(*f));
            f->ext = (cf.can_id & CAN_EFF_FLAG) != 0;
            f->rtr = (cf.can_id & CAN_RTR_FLAG) != 0;
            f->id = cf.can_id & (f->ext ? CAN_EFF_MASK : CAN_SFF_MASK);
            f->len = cf.len > 8 ? 8 : cf.len;
            memcpy(f->data, cf.data, 8);
        }
    }
}

static int read_slcan(rt_can_port *p) {
    char buf[1024];
    slcan_ctx s = {p, 0, 0, 0};
    for (;;) {
        const ssize_t r = read(p->fd, buf, sizeof(buf));
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR) return 0;
            p->status |= RT_CAN_GONE;
            return -1;
        }
        if (r == 0) {
            p->status |= RT_CAN_GONE; /* hang-up: the other end of the tty closed */
            return -1;
        }
        p->reads++;
        p->bytes_read += (uint64_t)r;
        rt_slcan_feed(&p->parser, buf, (int)r, slcan_event, &s);
        if (r < (ssize_t)sizeof(buf)) return 0;
    }
}

int rt_can_port_recv(rt_can_port *p, rt_can_frame *out, int max, int want, int64_t deadline_ns) {
    p->rx = out;
    p->rx_n = 0;
    p->rx_max = max;
    p->status = 0;
    if (p->fd < 0) {
        p->status |= RT_CAN_GONE;
        return 0;
    }
    for (int pass = 0;; ++pass) {
        int64_t left = deadline_ns - rt_can_mono_ns();
        if (want > 0 && p->rx_n >= want) break;
        if (left <= 0) {
            if (pass > 0) break;
            left = 0; /* a deadline already past: one non-blocking pass (drains what is pending) */
        }
        struct pollfd pf = {p->fd, POLLIN, 0};
        const struct timespec ts = {(time_t)(left / 1000000000LL), (long)(left % 1000000000LL)};
        const int r = ppoll(&pf, 1, &ts, NULL);
        if (r < 0) {
            if (errno == EINTR) continue;
            p->status |= RT_CAN_GONE;
            break;
        }
        if (r == 0) break;
        if (pf.revents & (POLLERR | POLLNVAL)) {
            p->status |= RT_CAN_GONE;
            break;
        }
        const int rr = p->kind == RT_CAN_SLCAN ? read_slcan(p) : read_socketcan(p);
        if (rr < 0) break;
        if ((pf.revents & POLLHUP) && !(pf.revents & POLLIN)) {
            p->status |= RT_CAN_GONE;
            break;
        }
    }
    p->rx = NULL;
    return p->rx_n;
}
