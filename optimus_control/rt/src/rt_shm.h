/* Controller side of the shared-memory joint bus, as an rt_transport. */
#ifndef OPTIMUS_RT_SHM_H
#define OPTIMUS_RT_SHM_H

#include <stddef.h>

#include "rt_transport.h"

typedef struct rt_shm rt_shm;

/* Opens an existing segment /dev/shm/<name> created by the robot side. NULL + err on failure. */
rt_shm *rt_shm_open(const char *name, int n_joints, int n_feet, char *err, size_t errlen);
void rt_shm_close(rt_shm *s);
void rt_shm_transport(rt_shm *s, rt_transport *t);

#endif
