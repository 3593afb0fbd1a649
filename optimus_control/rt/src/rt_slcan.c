/* SLCAN line codec: see rt_slcan.h. */
#include "rt_slcan.h"

#include <string.h>

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int hexn(const char *s, int n, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < n; ++i) {
        const int h = hexval(s[i]);
        if (h < 0) return -1;
        v = (v << 4) | (uint32_t)h;
    }
    *out = v;
    return 0;
}

void rt_slcan_reset(rt_slcan_parser *p) { memset(p, 0, sizeof(*p)); }

int rt_slcan_parse_frame(const char *line, int len, rt_can_frame *f) {
    if (len < 1) return -1;
    const char k = line[0];
    int idlen;
    if (k == 't' || k == 'r') idlen = 3;
    else if (k == 'T' || k == 'R') idlen = 8;
    else return -1;
    if (len < 1 + idlen + 1) return -1;
    uint32_t id, dlc;
    if (hexn(line + 1, idlen, &id) < 0 || hexn(line + 1 + idlen, 1, &dlc) < 0 || dlc > 8) return -1;
    if (idlen == 3 ? id > 0x7FF : id > 0x1FFFFFFF) return -1;
    const int rtr = (k == 'r' || k == 'R');
    const int ndata = rtr ? 0 : (int)dlc * 2;
    const int rest = len - (2 + idlen) - ndata;
    if (rest != 0 && rest != 4) return -1; /* optional timestamp */
    memset(f, 0, sizeof(*f));
    f->id = id;
    f->len = (uint8_t)dlc;
    f->ext = idlen == 8;
    f->rtr = (uint8_t)rtr;
    for (int i = 0; i < ndata / 2; ++i) {
        uint32_t b;
        if (hexn(line + 2 + idlen + 2 * i, 2, &b) < 0) return -1;
        f->data[i] = (uint8_t)b;
    }
    if (rest == 4) {
        uint32_t ts;
        if (hexn(line + len - 4, 4, &ts) < 0) return -1;
    }
    return 0;
}

static void finish_line(rt_slcan_parser *p, rt_slcan_event ev, void *ctx) {
    p->line[p->len] = '\0';
    if (p->overflow) {
        p->garbage++;
        ev(ctx, RT_SLCAN_GARBAGE, NULL, p->line);
    } else if (p->len == 0) {
        p->acks++;
        ev(ctx, RT_SLCAN_ACK, NULL, p->line);
    } else if (p->len == 1 && (p->line[0] == 'z' || p->line[0] == 'Z')) {
        p->tx_acks++;
        ev(ctx, RT_SLCAN_TX_ACK, NULL, p->line);
    } else {
        rt_can_frame f;
        const char k = p->line[0];
        if (rt_slcan_parse_frame(p->line, p->len, &f) == 0) {
            p->frames++;
            ev(ctx, RT_SLCAN_FRAME, &f, p->line);
        } else if (k == 'V' || k == 'v' || k == 'F' || k == 'N') {
            p->replies++;
            ev(ctx, RT_SLCAN_REPLY, NULL, p->line);
        } else {
            p->garbage++;
            ev(ctx, RT_SLCAN_GARBAGE, NULL, p->line);
        }
    }
    p->len = 0;
    p->overflow = 0;
}

void rt_slcan_feed(rt_slcan_parser *p, const char *buf, int n, rt_slcan_event ev, void *ctx) {
    for (int i = 0; i < n; ++i) {
        const char c = buf[i];
        if (c == '\r') {
            finish_line(p, ev, ctx);
        } else if (c == '\a') {
            /* an error answer has no '\r'; whatever was collected before it is garbage */
            if (p->len > 0 || p->overflow) {
                p->garbage++;
                p->line[p->len] = '\0';
                ev(ctx, RT_SLCAN_GARBAGE, NULL, p->line);
            }
            p->len = 0;
            p->overflow = 0;
            p->errors++;
            ev(ctx, RT_SLCAN_ERROR, NULL, "");
        } else if (c == '\n' || c == '\0') {
            /* tolerated separators of some adapters: ignored */
        } else if (p->len < RT_SLCAN_LINE_MAX) {
            p->line[p->len++] = c;
        } else {
            p->overflow = 1;
        }
    }
}

int rt_slcan_encode(const rt_can_frame *f, char *out) {
    static const char hex[] = "0123456789ABCDEF";
    int k = 0;
    const int len = f->len > 8 ? 8 : f->len;
    if (f->ext) {
        out[k++] = f->rtr ? 'R' : 'T';
        for (int s = 28; s >= 0; s -= 4) out[k++] = hex[(f->id >> s) & 0xF];
    } else {
        out[k++] = f->rtr ? 'r' : 't';
        for (int s = 8; s >= 0; s -= 4) out[k++] = hex[(f->id >> s) & 0xF];
    }
    out[k++] = (char)('0' + len);
    if (!f->rtr)
        for (int i = 0; i < len; ++i) {
            out[k++] = hex[f->data[i] >> 4];
            out[k++] = hex[f->data[i] & 0xF];
        }
    out[k++] = '\r';
    out[k] = '\0';
    return k;
}

int rt_slcan_bitrate_code(long bitrate) {
    static const long rates[] = {10000, 20000, 50000, 100000, 125000, 250000, 500000, -1, 1000000};
    for (int i = 0; i < 9; ++i)
        if (rates[i] == bitrate) return i;
    return -1;
}
