// Helpers shared by the kernels. The module is compiled twice (scripts/build-wasm.mjs): once for
// WASM SIMD128, once with relaxed SIMD, where `madd` is one fused multiply-add instead of two
// instructions; the loader picks the relaxed build where the engine validates it.

/** a · b + c, lane-wise. Fused (one rounding) or not, depending on the build and the hardware. */
@inline
export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}
