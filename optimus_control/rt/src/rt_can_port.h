/* One CAN adapter as seen by a bus thread: SLCAN on a serial tty or a SocketCAN raw socket.
 *
 * open/close are not real-time (they allocate nothing but do blocking set-up I/O); send and recv are
 * called by the bus thread every cycle: send writes a whole burst in one write() (SLCAN) or one write per
 * frame (SocketCAN); recv waits with poll() until a deadline and reads in blocks. */
#ifndef OPTIMUS_RT_CAN_PORT_H
#define OPTIMUS_RT_CAN_PORT_H

#include <stdint.h>

#include "rt_slcan.h"

enum { RT_CAN_SLCAN = 1, RT_CAN_SOCKETCAN = 2 };

/* recv status bits */
enum { RT_CAN_GONE = 1, RT_CAN_BUS_OFF = 2, RT_CAN_ADAPTER_ERROR = 4 };

#define RT_CAN_RX_MAX 64

typedef struct {
    int kind;
    int fd;
    long bitrate;
    char device[128];
    rt_slcan_parser parser;
    /* frames parsed by the current recv call */
    rt_can_frame *rx;
    int rx_n, rx_max;
    unsigned status;
    char version[RT_SLCAN_LINE_MAX + 1];
    uint64_t bytes_read, reads, adapter_errors, bus_off_events;
} rt_can_port;

/* url: "slcan:/dev/ttyACM0" or "socketcan:can0". Returns 0, or -1 with a message in err. */
int rt_can_port_parse_url(const char *url, int *kind, char *device, int device_len, char *err, int errlen);
int rt_can_port_open(rt_can_port *p, int kind, const char *device, long bitrate, int64_t timeout_ns, char *err,
                     int errlen);
void rt_can_port_close(rt_can_port *p);
/* Sends n frames as one burst: 0 ok, -1 the adapter is gone (or the tx queue is full). */
int rt_can_port_send(rt_can_port *p, const rt_can_frame *frames, int n);
/* Collects frames until deadline_ns (CLOCK_MONOTONIC) or until `want` frames arrived (0: only the
 * deadline); frames go to out[0..max). Returns the number of frames, and status bits in p->status. */
int rt_can_port_recv(rt_can_port *p, rt_can_frame *out, int max, int want, int64_t deadline_ns);

int64_t rt_can_mono_ns(void);

#endif
