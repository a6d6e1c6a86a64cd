#ifndef CKERNELS_H
#define CKERNELS_H
#include <stddef.h>
/// Placeholder replaced by the fused gate kernels.
int ckernels_version(void);
#endif
