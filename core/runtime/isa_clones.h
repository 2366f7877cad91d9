// ESB_CLONED_PER_ISA marks a hot loop to be compiled once per vector ISA:
// on x86-64 an AVX-512, an AVX2 and a baseline clone, the one this CPU
// runs picked at load time (GCC's target_clones). Elsewhere (the board's
// arm64) it expands to nothing: one function, vectorised for the target's
// baseline (NEON).
#ifndef ESB_CORE_RUNTIME_ISA_CLONES_H_
#define ESB_CORE_RUNTIME_ISA_CLONES_H_

#if defined(__x86_64__)
#define ESB_CLONED_PER_ISA \
  __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define ESB_CLONED_PER_ISA
#endif

#endif  // ESB_CORE_RUNTIME_ISA_CLONES_H_
