/* SLCAN (Lawicel ASCII over a serial tty) line codec.
 *
 * Lines end in '\r'. Frames: tIIIL<data> (11-bit), TIIIIIIIIL<data> (29-bit), r/R remote; an optional
 * 4-hex-digit timestamp after the data is ignored. The adapter answers a command with '\r' (OK),
 * 'z\r'/'Z\r' after a transmitted frame, or '\a' (error, no '\r'). The parser is fed whatever read()
 * returned (split lines, several lines, garbage) and never allocates: real-time safe. */
#ifndef OPTIMUS_RT_SLCAN_H
#define OPTIMUS_RT_SLCAN_H

#include <stdint.h>

typedef struct {
    uint32_t id;
    uint8_t len, ext, rtr, _pad;
    uint8_t data[8];
} rt_can_frame;

enum {
    RT_SLCAN_FRAME = 1,   /* a bus frame */
    RT_SLCAN_ACK = 2,     /* '\r' alone */
    RT_SLCAN_TX_ACK = 3,  /* 'z\r' or 'Z\r' */
    RT_SLCAN_ERROR = 4,   /* '\a' */
    RT_SLCAN_REPLY = 5,   /* another line (V..., F..., N...): text in the parser's line */
    RT_SLCAN_GARBAGE = 6, /* a line that is none of the above, or longer than the buffer */
};

#define RT_SLCAN_LINE_MAX 64

typedef struct {
    char line[RT_SLCAN_LINE_MAX + 1];
    int len;
    int overflow; /* the current line is too long: dropped up to its '\r' */
    uint64_t frames, acks, tx_acks, errors, replies, garbage;
} rt_slcan_parser;

typedef void (*rt_slcan_event)(void *ctx, int kind, const rt_can_frame *frame, const char *line);

void rt_slcan_reset(rt_slcan_parser *p);
/* Feeds n bytes; calls ev for each complete event, in order. */
void rt_slcan_feed(rt_slcan_parser *p, const char *buf, int n, rt_slcan_event ev, void *ctx);
/* Parses one line (without '\r') into a frame: 0 ok, -1 not a valid frame line. */
int rt_slcan_parse_frame(const char *line, int len, rt_can_frame *f);
/* Encodes a frame as a line ending in '\r' into out (>= 32 bytes); returns its length. */
int rt_slcan_encode(const rt_can_frame *f, char *out);
/* "S0".."S8" for a bitrate in bit/s (Lawicel table; 800 kbit/s is S7 on Lawicel, 750 on CANable:
 * refused as ambiguous); -1 if none. */
int rt_slcan_bitrate_code(long bitrate);

#endif
