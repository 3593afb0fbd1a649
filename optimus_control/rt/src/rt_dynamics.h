/* Flattened kinematic tree and rigid-body dynamics kernels (RNEA, gravity, nonlinear effects, CRBA,
 * frame placements and Jacobians) in Pinocchio's conventions.
 *
 * Conventions (the same as Pinocchio):
 *  - spatial motion and force vectors are [linear(3); angular(3)];
 *  - an SE3 placement (R, p) maps coordinates of the child frame to the parent: x_parent = R x_child + p;
 *  - rotation matrices are stored row-major;
 *  - body b (0..nb-1) is Pinocchio joint b+1 (joint 0, the universe, is implicit); parent -1 = universe;
 *  - the free-flyer q is [x y z qx qy qz qw], its v is [linear; angular] in the local (body) frame.
 * The model holds its own workspace, so a model is used by one thread at a time (clone it for another).
 */
#ifndef OPTIMUS_RT_DYNAMICS_H
#define OPTIMUS_RT_DYNAMICS_H

#include <stddef.h>

enum rt_joint_type {
    RT_JOINT_FREEFLYER = 0,
    RT_JOINT_REVOLUTE = 1,
    RT_JOINT_PRISMATIC = 2,
    RT_JOINT_REVOLUTE_UNBOUNDED = 3, /* q = (cos, sin), nq 2, nv 1 */
    RT_JOINT_FIXED_COUNT
};

/* Reference frames, numbered as pinocchio.ReferenceFrame. */
enum rt_reference { RT_WORLD = 0, RT_LOCAL = 1, RT_LOCAL_WORLD_ALIGNED = 2 };

typedef struct {
    double R[9];
    double p[3];
} rt_se3;

/* Columns of one joint row in the spec matrix given to rt_model_create. */
enum {
    RT_JS_PARENT = 0, RT_JS_TYPE, RT_JS_IDX_Q, RT_JS_IDX_V, RT_JS_AXIS, /* 3 */
    RT_JS_R = 7,      /* 9, row-major */
    RT_JS_P = 16,     /* 3 */
    RT_JS_MASS = 19, RT_JS_COM = 20, /* 3 */
    RT_JS_ICOM = 23,  /* 9, rotational inertia about the centre of mass, in the joint frame */
    RT_JS_COLS = 32
};
/* Columns of one frame row: parent body (-1 universe), R (9), p (3). */
enum { RT_FS_PARENT = 0, RT_FS_R = 1, RT_FS_P = 10, RT_FS_COLS = 13 };

typedef struct rt_model {
    int nq, nv, nb, nframes;
    double gravity[6];
    /* per body */
    int *parent, *jtype, *axis_kind, *idx_q, *idx_v, *jnv, *rot_identity;
    int *rot_kind;    /* 0: general liMi rotation; 1..3: rotation about x/y/z (identity placement) */
    double *axis;     /* nb x 3 */
    rt_se3 *jplace;   /* joint placement in the parent joint frame */
    double *inertia;  /* nb x 13: m, h = m c (3), Io (9, about the joint origin) */
    /* per frame */
    int *fparent;
    rt_se3 *fplace;
    /* workspace */
    rt_se3 *liMi, *oMi;
    double *vel, *acc, *frc;  /* nb x 6 */
    double *ycrb;             /* nb x 13 */
    double *cs;               /* nb x 2: cos, sin of revolute joints */
    size_t block_size;
    void *block;
} rt_model;

/* Builds a model from spec rows (see RT_JS_* / RT_FS_*). Returns NULL and fills err (size errlen) on bad input. */
rt_model *rt_model_create(int nq, int nv, int nb, const double *joints, int nframes, const double *frames,
                          const double gravity[6], char *err, size_t errlen);
rt_model *rt_model_clone(const rt_model *m);
void rt_model_free(rt_model *m);

/* tau (nv) = M(q) a + C(q, v) v + g(q) - sum over bodies of fext (body-frame wrenches, nb x 6, may be NULL).
 * v or a may be NULL (taken as zero). */
void rt_rnea(rt_model *m, const double *q, const double *v, const double *a, const double *fext, double *tau);
/* M (nv x nv, row-major, full symmetric). */
void rt_crba(rt_model *m, const double *q, double *M);
/* Fills m->oMi for every body. */
void rt_forward_kinematics(rt_model *m, const double *q);
/* Placement of frame f in the world (after rt_forward_kinematics). */
void rt_frame_placement(const rt_model *m, int frame, rt_se3 *out);
/* J (6 x nv, row-major) of frame f in the given reference (after rt_forward_kinematics). */
void rt_frame_jacobian(const rt_model *m, int frame, int reference, double *J);
/* Adds a wrench (6, [force; torque] at the frame origin, in `reference` axes) applied to frame f to the
 * body-frame external-force array fext (nb x 6). Needs rt_forward_kinematics unless reference is LOCAL. */
void rt_add_frame_wrench(const rt_model *m, int frame, int reference, const double *wrench, double *fext);

#endif
