/* Controller side of the shared-memory joint bus, as an rt_transport. */
#ifndef OPTIMUS_RT_SHM_H
#define OPTIMUS_RT_SHM_H

#include <stddef.h>

#include "rt_transport.h"

typedef struct rt_shm rt_shm;

/* Opens an existing segment /dev/shm/<name> created by the robot side and claims its controller side
 * (released by rt_shm_close or the process's death). NULL + err on failure; *owned is set to 1 when
 * the failure is a controller side held by another live process. */
rt_shm *rt_shm_open(const char *name, int n_joints, int n_feet, int *owned, char *err, size_t errlen);
void rt_shm_close(rt_shm *s);
void rt_shm_transport(rt_shm *s, rt_transport *t);

#endif
