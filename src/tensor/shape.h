// A fixed-capacity shape / strides array, so that making a tensor never allocates for its shape.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>

#include "core/error.h"

namespace tfm {

inline constexpr int kMaxDims = 6;

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) { assign(dims.begin(), dims.size()); }
  explicit Shape(std::span<const int64_t> dims) { assign(dims.data(), dims.size()); }

  int size() const { return n_; }
  int64_t operator[](int i) const { return d_[i]; }
  int64_t& operator[](int i) { return d_[i]; }
  const int64_t* begin() const { return d_.data(); }
  const int64_t* end() const { return d_.data() + n_; }
  int64_t back() const { return d_[n_ - 1]; }
  void push_back(int64_t v) {
    TFM_CHECK(n_ < kMaxDims, "more than {} dimensions", kMaxDims);
    d_[n_++] = v;
  }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < n_; ++i) n *= d_[i];
    return n;
  }
  bool operator==(const Shape& o) const {
    if (n_ != o.n_) return false;
    for (int i = 0; i < n_; ++i)
      if (d_[i] != o.d_[i]) return false;
    return true;
  }
  std::string str() const {  // "[2, 3, 4]"
    std::string s = "[";
    for (int i = 0; i < n_; ++i) s += (i ? ", " : "") + std::to_string(d_[i]);
    return s + "]";
  }

 private:
  void assign(const int64_t* p, size_t n) {
    TFM_CHECK(n <= size_t(kMaxDims), "more than {} dimensions", kMaxDims);
    n_ = int(n);
    for (size_t i = 0; i < n; ++i) d_[i] = p[i];
  }
  std::array<int64_t, kMaxDims> d_{};
  int n_ = 0;
};

}  // namespace tfm
