// Tensor: shared storage + shape + strides (in elements) + dtype + device. Row-major.
// Views (view, transpose, narrow, select) share storage; nothing copies behind your back:
// an operation that needs contiguous input says so and throws if it does not get it.
//
// Memory is 64-byte aligned. Tensor::empty draws from the innermost active Arena on this thread
// (see arena.h) when there is one, so a training step in steady state does not call malloc.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "tensor/dtype.h"
#include "tensor/shape.h"

namespace tfm {

class Tensor {
 public:
  Tensor() = default;

  // Uninitialised tensor (from the active arena if one is active, else the heap).
  static Tensor empty(const Shape& shape, DType dtype = DType::F32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32);
  static Tensor full(const Shape& shape, float value);
  // Always heap, never an arena: for parameters, optimizer state, caches that outlive a step.
  static Tensor empty_persistent(const Shape& shape, DType dtype = DType::F32);
  static Tensor zeros_persistent(const Shape& shape, DType dtype = DType::F32);
  // Wraps memory owned by `owner` (e.g. a memory map); `data` must stay valid while owner lives.
  static Tensor wrap(std::shared_ptr<void> owner, void* data, const Shape& shape, DType dtype);

  bool defined() const { return defined_; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int dim() const { return shape_.size(); }
  int64_t size(int d) const { return shape_[norm_dim(d)]; }
  int64_t numel() const { return shape_.numel(); }
  DType dtype() const { return dtype_; }
  Device device() const { return Device::CPU; }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype_); }
  bool is_contiguous() const;

  void* raw() const { return data_; }
  template <typename T>
  T* data() const {
    check_dtype(dtype_of<T>());
    return static_cast<T*>(data_);
  }
  float* f32() const { return data<float>(); }

  // Views.
  Tensor view(const Shape& shape) const;  // contiguous only; one dimension may be -1
  Tensor transpose(int a, int b) const;
  Tensor narrow(int dim, int64_t start, int64_t length) const;
  Tensor select(int dim, int64_t index) const;  // drops `dim`
  Tensor unsqueeze(int dim) const;

  // Copies.
  Tensor contiguous() const;                    // self if already contiguous
  Tensor clone(bool persistent = false) const;  // always a fresh contiguous copy
  Tensor to(DType dtype, bool persistent = false) const;
  void copy_(const Tensor& src);  // same shape; any strides and dtypes
  void fill_(float value);
  void zero_();

  // Element access for tests and small code (slow; float tensors or integer tensors).
  float item() const;  // a one-element tensor as float
  double at(std::initializer_list<int64_t> index) const;

  std::string str() const;  // "Tensor(F32, [2, 3])"

 private:
  int norm_dim(int d) const;
  void check_dtype(DType want) const;

  std::shared_ptr<void> owner_;
  void* data_ = nullptr;
  Shape shape_;
  Shape strides_;
  DType dtype_ = DType::F32;
  bool defined_ = false;
};

// Contiguous strides for a shape.
Shape contiguous_strides(const Shape& shape);

}  // namespace tfm
