// Element types. Compute is float32; float16/bfloat16 are storage types converted on load.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace tfm {

enum class DType : uint8_t { F32, F16, BF16, F64, I64, I32, U8, I8 };
enum class Device : uint8_t { CPU, CUDA };

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);  // safetensors spelling: "F32", "BF16", ...

template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::F32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::F64;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::I64;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return DType::I32;
}
template <>
constexpr DType dtype_of<uint8_t>() {
  return DType::U8;
}
template <>
constexpr DType dtype_of<int8_t>() {
  return DType::I8;
}

// bfloat16: the top 16 bits of a float32. Rounding to nearest even on the way down.
inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

// IEEE half precision (F16C does this in hardware; this portable version is exact).
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

}  // namespace tfm
