// The element-wise Adam/AdamW update (`Adam.step`), vectorized.
//
// The operations and their order are those of PyTorch's single-tensor Adam (lerp for m, then v,
// then the bias-corrected step). The target compiles with -ffp-contract=fast, so on CPUs with FMA
// products and sums may fuse (one rounding instead of two): results agree with the plain rule to
// float rounding, not to the bit across CPUs.
#include "CKernels.h"
#include "kernel_attributes.h"

CK_KERNEL void ck_adam_update(long n, float *restrict theta, const float *restrict grad, float *restrict m,
                              float *restrict v, const ck_adam_constants *constants) {
    const ck_adam_constants c = *constants;
    const float complement = 1 - c.lerpWeight;
    // Branches on the constants sit outside the loops so each loop is one straight vector body.
    if (c.shrink != 1) {
        for (long j = 0; j < n; j++) theta[j] = theta[j] * c.shrink;
    }
    for (long j = 0; j < n; j++) {
        float g = grad[j];
        if (c.coupledDecay != 0) g = g + c.coupledDecay * theta[j];
        float mj = c.lerpWeight < 0.5f ? m[j] + c.lerpWeight * (g - m[j]) : g - (g - m[j]) * complement;
        float vj = v[j] * c.beta2;
        vj = vj + c.squareWeight * g * g;
        float denominator = __builtin_sqrtf(vj) / c.correction2Root + c.epsilon;
        theta[j] = theta[j] + c.negativeStepSize * mj / denominator;
        m[j] = mj;
        v[j] = vj;
    }
}
