// IEEE 754 half precision -> float, for FeatureSequence.data_fp16. Header-only
// and exact (every half is representable as a float).
#ifndef MMFUSE_COMMON_FP16_H_
#define MMFUSE_COMMON_FP16_H_

#include <cstdint>
#include <cstring>

namespace mmfuse {

inline float HalfToFloat(uint16_t half) {
  const uint32_t sign = static_cast<uint32_t>(half & 0x8000u) << 16;
  const uint32_t exponent = (half >> 10) & 0x1Fu;
  uint32_t mantissa = half & 0x3FFu;
  uint32_t bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;  // Signed zero.
    } else {
      // Subnormal: normalise into a float exponent.
      int shift = 0;
      while ((mantissa & 0x400u) == 0) {
        mantissa <<= 1;
        ++shift;
      }
      mantissa &= 0x3FFu;
      bits = sign | static_cast<uint32_t>(127 - 15 + 1 - shift) << 23 | mantissa << 13;
    }
  } else if (exponent == 0x1F) {
    bits = sign | 0x7F800000u | mantissa << 13;  // Inf or NaN.
  } else {
    bits = sign | (exponent + 127 - 15) << 23 | mantissa << 13;
  }
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

// Reads the i-th little-endian half of `bytes`.
inline float HalfAt(const char* bytes, int64_t i) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes) + 2 * i;
  return HalfToFloat(static_cast<uint16_t>(p[0] | (p[1] << 8)));
}

}  // namespace mmfuse

#endif  // MMFUSE_COMMON_FP16_H_
