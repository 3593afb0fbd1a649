/* MIT-mode CAN codec (Mini Cheetah motor firmware; CubeMars/T-Motor AK, Damiao DM).
 *
 * Command (8 bytes to the motor's 11-bit id), big-endian bit fields p16 | v12 | kp12 | kd12 | t12, each
 * uint = (x - min) * (2^bits - 1) / (max - min), truncated as the firmware's inverse expects. The firmware
 * does not clamp: a value outside its range would overflow into the neighbouring field, so every field is
 * clamped here BEFORE packing (a NaN becomes 0 clamped into range, and is reported like a clamp).
 * Reply (to host id 0): 6 bytes id | p16 | v12 | t12, or Damiao's 8 bytes (d0 = error nibble << 4 | id,
 * d6 MOSFET temperature, d7 rotor temperature [deg C]).
 * All functions are pure and allocation-free: real-time safe. */
#ifndef OPTIMUS_RT_MIT_H
#define OPTIMUS_RT_MIT_H

#include <stdint.h>

typedef struct {
    double p_min, p_max;   /* [rad] motor side */
    double v_min, v_max;   /* [rad/s] */
    double kp_min, kp_max; /* [N m/rad] */
    double kd_min, kd_max; /* [N m s/rad] */
    double t_min, t_max;   /* [N m] */
    int damiao_reply;      /* 1: the motor answers with Damiao's 8-byte reply */
} rt_mit_range;

typedef struct {
    double p, v, kp, kd, t;
} rt_mit_cmd;

typedef struct {
    int id;        /* low bits of d0 (6-byte reply: the whole byte; Damiao: low nibble) */
    double p, v, t;
    int damiao;    /* the fields below are valid */
    int error;     /* Damiao state/error nibble (0 disabled, 1 enabled, 8.. faults) */
    int t_mos, t_rotor; /* [deg C] */
} rt_mit_reply;

enum { RT_MIT_ENTER = 0xFC, RT_MIT_EXIT = 0xFD, RT_MIT_ZERO = 0xFE };

/* Bits of the clamp mask returned by rt_mit_pack. */
enum { RT_MIT_CLAMP_P = 1, RT_MIT_CLAMP_V = 2, RT_MIT_CLAMP_KP = 4, RT_MIT_CLAMP_KD = 8, RT_MIT_CLAMP_T = 16 };

/* x clamped to [lo, hi] then scaled to an unsigned of `bits` bits; *clamped set to 1 if it was clamped. */
uint32_t rt_mit_to_uint(double x, double lo, double hi, int bits, int *clamped);
double rt_mit_from_uint(uint32_t u, double lo, double hi, int bits);

/* Packs a command; returns the mask of clamped fields. */
unsigned rt_mit_pack(const rt_mit_range *r, const rt_mit_cmd *c, uint8_t out[8]);
/* Unpacks a reply of len bytes (6, or 8 when r->damiao_reply). Returns 0, or -1 for a wrong length. */
int rt_mit_unpack(const rt_mit_range *r, const uint8_t *d, int len, rt_mit_reply *out);
/* FF x7 then kind (RT_MIT_ENTER / EXIT / ZERO). */
void rt_mit_special(int kind, uint8_t out[8]);
/* The special kind of an 8-byte frame, or 0 if it is an ordinary command. */
int rt_mit_special_kind(const uint8_t *d, int len);
/* Range sanity: every max > min, finite. Returns 0 or -1. */
int rt_mit_range_valid(const rt_mit_range *r);

typedef struct {
    const char *name;
    rt_mit_range range;
    const char *source;
} rt_mit_model;

/* The table of known models (ranges as their firmware defines them; Damiao is not here: its ranges live
 * in each unit's flash and are always given explicitly). */
extern const rt_mit_model rt_mit_models[];
extern const int rt_mit_model_count;

#endif
