/* MIT-mode CAN codec: see rt_mit.h. */
#include "rt_mit.h"

#include <math.h>

uint32_t rt_mit_to_uint(double x, double lo, double hi, int bits, int *clamped) {
    if (!isfinite(x)) {
        *clamped = 1;
        x = 0.0;
    }
    if (x < lo) {
        x = lo;
        *clamped = 1;
    } else if (x > hi) {
        x = hi;
        *clamped = 1;
    }
    const double maxu = (double)((1u << bits) - 1u);
    double u = (x - lo) * maxu / (hi - lo);
    if (u < 0.0) u = 0.0; /* rounding at the ends can never leave [0, maxu] */
    if (u > maxu) u = maxu;
    return (uint32_t)u;
}

double rt_mit_from_uint(uint32_t u, double lo, double hi, int bits) {
    return (double)u * (hi - lo) / (double)((1u << bits) - 1u) + lo;
}

unsigned rt_mit_pack(const rt_mit_range *r, const rt_mit_cmd *c, uint8_t out[8]) {
    int cp = 0, cv = 0, ckp = 0, ckd = 0, ct = 0;
    const uint32_t p = rt_mit_to_uint(c->p, r->p_min, r->p_max, 16, &cp);
    const uint32_t v = rt_mit_to_uint(c->v, r->v_min, r->v_max, 12, &cv);
    const uint32_t kp = rt_mit_to_uint(c->kp, r->kp_min, r->kp_max, 12, &ckp);
    const uint32_t kd = rt_mit_to_uint(c->kd, r->kd_min, r->kd_max, 12, &ckd);
    const uint32_t t = rt_mit_to_uint(c->t, r->t_min, r->t_max, 12, &ct);
    out[0] = (uint8_t)(p >> 8);
    out[1] = (uint8_t)(p & 0xFF);
    out[2] = (uint8_t)(v >> 4);
    out[3] = (uint8_t)(((v & 0xF) << 4) | (kp >> 8));
    out[4] = (uint8_t)(kp & 0xFF);
    out[5] = (uint8_t)(kd >> 4);
    out[6] = (uint8_t)(((kd & 0xF) << 4) | (t >> 8));
    out[7] = (uint8_t)(t & 0xFF);
    return (cp ? RT_MIT_CLAMP_P : 0u) | (cv ? RT_MIT_CLAMP_V : 0u) | (ckp ? RT_MIT_CLAMP_KP : 0u) |
           (ckd ? RT_MIT_CLAMP_KD : 0u) | (ct ? RT_MIT_CLAMP_T : 0u);
}

int rt_mit_unpack(const rt_mit_range *r, const uint8_t *d, int len, rt_mit_reply *out) {
    if (len != (r->damiao_reply ? 8 : 6)) return -1;
    const uint32_t p = ((uint32_t)d[1] << 8) | d[2];
    const uint32_t v = ((uint32_t)d[3] << 4) | (d[4] >> 4);
    const uint32_t t = ((uint32_t)(d[4] & 0xF) << 8) | d[5];
    out->p = rt_mit_from_uint(p, r->p_min, r->p_max, 16);
    out->v = rt_mit_from_uint(v, r->v_min, r->v_max, 12);
    out->t = rt_mit_from_uint(t, r->t_min, r->t_max, 12);
    if (r->damiao_reply) {
        out->id = d[0] & 0xF;
        out->damiao = 1;
        out->error = d[0] >> 4;
        out->t_mos = d[6];
        out->t_rotor = d[7];
    } else {
        out->id = d[0];
        out->damiao = 0;
        out->error = 0;
        out->t_mos = out->t_rotor = 0;
    }
    return 0;
}

void rt_mit_special(int kind, uint8_t out[8]) {
    for (int i = 0; i < 7; ++i) out[i] = 0xFF;
    out[7] = (uint8_t)kind;
}

int rt_mit_special_kind(const uint8_t *d, int len) {
    if (len != 8) return 0;
    for (int i = 0; i < 7; ++i)
        if (d[i] != 0xFF) return 0;
    return (d[7] == RT_MIT_ENTER || d[7] == RT_MIT_EXIT || d[7] == RT_MIT_ZERO) ? d[7] : 0;
}

int rt_mit_range_valid(const rt_mit_range *r) {
    const double lo[5] = {r->p_min, r->v_min, r->kp_min, r->kd_min, r->t_min};
    const double hi[5] = {r->p_max, r->v_max, r->kp_max, r->kd_max, r->t_max};
    for (int i = 0; i < 5; ++i)
        if (!isfinite(lo[i]) || !isfinite(hi[i]) || !(hi[i] > lo[i])) return -1;
    return 0;
}

/* Only ranges stated by the firmware or the vendor's driver documentation (see
 * /work/shared/reference/actuators_and_hil.md); P/KP/KD of the AK V2 entries are the MIT defaults their
 * firmware keeps. A model whose figures differ between firmware versions needs its version in the name. */
const rt_mit_model rt_mit_models[] = {
    {"mini_cheetah", {-12.5, 12.5, -65.0, 65.0, 0.0, 500.0, 0.0, 5.0, -18.0, 18.0, 0},
     "MIT Mini Cheetah motor firmware (bgkatz/motorcontrol), classic ranges"},
    {"ak80-9_v2", {-12.5, 12.5, -25.64, 25.64, 0.0, 500.0, 0.0, 5.0, -18.0, 18.0, 0},
     "CubeMars AK80-9, firmware V2 (dfki-ric-underactuated-lab/mini-cheetah-tmotor-python-can)"},
    {"ak80-6_v2", {-12.5, 12.5, -38.2, 38.2, 0.0, 500.0, 0.0, 5.0, -12.0, 12.0, 0},
     "CubeMars AK80-6, firmware V2 (dfki-ric-underactuated-lab/mini-cheetah-tmotor-python-can)"},
};
const int rt_mit_model_count = (int)(sizeof(rt_mit_models) / sizeof(rt_mit_models[0]));
