#include "tensor/tensor.h"

#include <cstring>

#include "tensor/arena.h"

namespace tfm {

Shape contiguous_strides(const Shape& shape) {
  Shape s = shape;
  int64_t stride = 1;
  for (int i = shape.size() - 1; i >= 0; --i) {
    s[i] = stride;
    stride *= shape[i];
  }
  return s;
}

Tensor Tensor::wrap(std::shared_ptr<void> owner, void* data, const Shape& shape, DType dtype) {
  for (int64_t d : shape) TFM_CHECK(d >= 0, "negative dimension in {}", shape.str());
  Tensor t;
  t.owner_ = std::move(owner);
  t.data_ = data;
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  t.defined_ = true;
  return t;
}

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  Arena* arena = current_arena();
  if (!arena) return empty_persistent(shape, dtype);
  std::shared_ptr<void> owner;
  void* p = arena->allocate(size_t(shape.numel()) * dtype_size(dtype), owner);
  return wrap(std::move(owner), p, shape, dtype);
}

Tensor Tensor::empty_persistent(const Shape& shape, DType dtype) {
  auto mem = aligned_alloc_shared(size_t(shape.numel()) * dtype_size(dtype));
  void* p = mem.get();
  return wrap(std::move(mem), p, shape, dtype);
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  t.zero_();
  return t;
}

Tensor Tensor::zeros_persistent(const Shape& shape, DType dtype) {
  auto mem = zeroed_alloc_shared(size_t(shape.numel()) * dtype_size(dtype));
  void* p = mem.get();
  return wrap(std::move(mem), p, shape, dtype);
}

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty(shape, DType::F32);
  t.fill_(value);
  return t;
}

int Tensor::norm_dim(int d) const {
  int n = shape_.size();
  if (d < 0) d += n;
  TFM_CHECK(d >= 0 && d < n, "dimension {} out of range for {}", d, shape_.str());
  return d;
}

void Tensor::check_dtype(DType want) const {
  TFM_CHECK(defined_, "undefined tensor");
  TFM_CHECK(dtype_ == want, "tensor has dtype {}, expected {}", dtype_name(dtype_), dtype_name(want));
}

bool Tensor::is_contiguous() const {
  int64_t expect = 1;
  for (int i = shape_.size() - 1; i >= 0; --i) {
    if (shape_[i] != 1 && strides_[i] != expect) return false;
    expect *= shape_[i];
  }
  return true;
}

Tensor Tensor::view(const Shape& shape) const {
  TFM_CHECK(is_contiguous(), "view of a non-contiguous tensor {}", str());
  Shape s = shape;
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      TFM_CHECK(infer < 0, "two -1 dimensions in view {}", shape.str());
      infer = i;
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) s[infer] = known ? numel() / known : 0;
  TFM_CHECK(s.numel() == numel(), "cannot view {} as {}", shape_.str(), shape.str());
  Tensor t = *this;
  t.shape_ = s;
  t.strides_ = contiguous_strides(s);
  return t;
}

Tensor Tensor::transpose(int a, int b) const {
  a = norm_dim(a);
  b = norm_dim(b);
  Tensor t = *this;
  std::swap(t.shape_[a], t.shape_[b]);
  std::swap(t.strides_[a], t.strides_[b]);
  return t;
}

Tensor Tensor::narrow(int dim, int64_t start, int64_t length) const {
  dim = norm_dim(dim);
  TFM_CHECK(start >= 0 && length >= 0 && start + length <= shape_[dim], "narrow [{}, {}) of dim {} in {}",
            start, start + length, dim, shape_.str());
  Tensor t = *this;
  t.data_ = static_cast<char*>(data_) + start * strides_[dim] * int64_t(dtype_size(dtype_));
  t.shape_[dim] = length;
  return t;
}

Tensor Tensor::select(int dim, int64_t index) const {
  dim = norm_dim(dim);
  Tensor n = narrow(dim, index, 1);
  Tensor t = n;
  t.shape_ = Shape();
  t.strides_ = Shape();
  for (int i = 0; i < shape_.size(); ++i) {
    if (i == dim) continue;
    t.shape_.push_back(n.shape_[i]);
    t.strides_.push_back(n.strides_[i]);
  }
  return t;
}

Tensor Tensor::unsqueeze(int dim) const {
  int n = shape_.size();
  if (dim < 0) dim += n + 1;
  TFM_CHECK(dim >= 0 && dim <= n, "unsqueeze({}) of {}", dim, shape_.str());
  Tensor t = *this;
  t.shape_ = Shape();
  t.strides_ = Shape();
  for (int i = 0; i <= n; ++i) {
    if (i == dim) {
      t.shape_.push_back(1);
      t.strides_.push_back(i < n ? shape_[i] * strides_[i] : 1);
    }
    if (i < n) {
      t.shape_.push_back(shape_[i]);
      t.strides_.push_back(strides_[i]);
    }
  }
  return t;
}

namespace {

double load_as_double(const void* p, DType t) {
  switch (t) {
    case DType::F32:
      return *static_cast<const float*>(p);
    case DType::F16:
      return f16_to_f32(*static_cast<const uint16_t*>(p));
    case DType::BF16:
      return bf16_to_f32(*static_cast<const uint16_t*>(p));
    case DType::F64:
      return *static_cast<const double*>(p);
    case DType::I64:
      return double(*static_cast<const int64_t*>(p));
    case DType::I32:
      return *static_cast<const int32_t*>(p);
    case DType::U8:
      return *static_cast<const uint8_t*>(p);
    case DType::I8:
      return *static_cast<const int8_t*>(p);
  }
  return 0;
}

void store_from_double(void* p, DType t, double v) {
  switch (t) {
    case DType::F32:
      *static_cast<float*>(p) = float(v);
      break;
    case DType::F16:
      *static_cast<uint16_t*>(p) = f32_to_f16(float(v));
      break;
    case DType::BF16:
      *static_cast<uint16_t*>(p) = f32_to_bf16(float(v));
      break;
    case DType::F64:
      *static_cast<double*>(p) = v;
      break;
    case DType::I64:
      *static_cast<int64_t*>(p) = int64_t(v);
      break;
    case DType::I32:
      *static_cast<int32_t*>(p) = int32_t(v);
      break;
    case DType::U8:
      *static_cast<uint8_t*>(p) = uint8_t(v);
      break;
    case DType::I8:
      *static_cast<int8_t*>(p) = int8_t(v);
      break;
  }
}

// Calls fn(dst_offset, src_offset) (in elements) for every index of `shape`, row-major.
template <typename Fn>
void for_each_index(const Shape& shape, const Shape& dst_strides, const Shape& src_strides, Fn fn) {
  int n = shape.size();
  if (shape.numel() == 0) return;
  std::array<int64_t, kMaxDims> idx{};
  int64_t d = 0, s = 0;
  while (true) {
    fn(d, s);
    int k = n - 1;
    for (; k >= 0; --k) {
      if (++idx[k] < shape[k]) {
        d += dst_strides[k];
        s += src_strides[k];
        break;
      }
      d -= (shape[k] - 1) * dst_strides[k];
      s -= (shape[k] - 1) * src_strides[k];
      idx[k] = 0;
    }
    if (k < 0) return;
  }
}

}  // namespace

void Tensor::copy_(const Tensor& src) {
  TFM_CHECK(shape_ == src.shape_, "copy_ from {} into {}", src.shape_.str(), shape_.str());
  if (dtype_ == src.dtype_ && is_contiguous() && src.is_contiguous()) {
    std::memmove(data_, src.data_, nbytes());
    return;
  }
  if (dtype_ == DType::F32 && src.dtype_ == DType::F32) {
    float* d = f32();
    const float* s = src.f32();
    for_each_index(shape_, strides_, src.strides_, [&](int64_t di, int64_t si) { d[di] = s[si]; });
    return;
  }
  size_t ds = dtype_size(dtype_), ss = dtype_size(src.dtype_);
  char* d = static_cast<char*>(data_);
  const char* s = static_cast<const char*>(src.data_);
  for_each_index(shape_, strides_, src.strides_, [&](int64_t di, int64_t si) {
    store_from_double(d + di * ds, dtype_, load_as_double(s + si * ss, src.dtype_));
  });
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone(bool persistent) const { return to(dtype_, persistent); }

Tensor Tensor::to(DType dtype, bool persistent) const {
  Tensor t = persistent ? empty_persistent(shape_, dtype) : empty(shape_, dtype);
  t.copy_(*this);
  return t;
}

void Tensor::fill_(float value) {
  if (dtype_ == DType::F32 && is_contiguous()) {
    float* p = f32();
    for (int64_t i = 0, n = numel(); i < n; ++i) p[i] = value;
    return;
  }
  size_t ds = dtype_size(dtype_);
  char* d = static_cast<char*>(data_);
  for_each_index(shape_, strides_, strides_,
                 [&](int64_t di, int64_t) { store_from_double(d + di * ds, dtype_, value); });
}

void Tensor::zero_() {
  if (is_contiguous()) {
    std::memset(data_, 0, nbytes());
  } else {
    fill_(0.0f);
  }
}

float Tensor::item() const {
  TFM_CHECK(numel() == 1, "item() of {}", str());
  return float(load_as_double(data_, dtype_));
}

double Tensor::at(std::initializer_list<int64_t> index) const {
  TFM_CHECK(int(index.size()) == dim(), "index of {} dims into {}", index.size(), str());
  int64_t off = 0;
  int i = 0;
  for (int64_t v : index) {
    TFM_CHECK(v >= 0 && v < shape_[i], "index {} out of range in {}", v, str());
    off += v * strides_[i++];
  }
  return load_as_double(static_cast<const char*>(data_) + off * int64_t(dtype_size(dtype_)), dtype_);
}

std::string Tensor::str() const {
  return std::string("Tensor(") + std::string(dtype_name(dtype_)) + ", " + shape_.str() + ")";
}

}  // namespace tfm
