// A read-only run of token ids stored as int32 or as uint16 (the narrow form token files use when every id
// fits), read as int32 either way.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

namespace tfm::data {

class IdView {
 public:
  IdView() = default;
  IdView(std::span<const int32_t> ids) : data_(ids.data()), size_(int64_t(ids.size())), narrow_(false) {}
  IdView(std::span<const uint16_t> ids) : data_(ids.data()), size_(int64_t(ids.size())), narrow_(true) {}

  int64_t size() const { return size_; }
  IdView subview(int64_t offset, int64_t count) const {
    IdView v = *this;
    v.data_ = static_cast<const char*>(data_) + offset * (narrow_ ? 2 : 4);
    v.size_ = count;
    return v;
  }
  // Writes the ids to out[0, size()).
  template <typename T>
  void copy_to(T* out) const {
    if (narrow_) {
      const auto* p = static_cast<const uint16_t*>(data_);
      std::copy(p, p + size_, out);
    } else {
      const auto* p = static_cast<const int32_t*>(data_);
      std::copy(p, p + size_, out);
    }
  }
  std::vector<int32_t> to_vector() const {
    std::vector<int32_t> ids(static_cast<size_t>(size_));
    copy_to(ids.data());
    return ids;
  }

 private:
  const void* data_ = nullptr;
  int64_t size_ = 0;
  bool narrow_ = false;
};

}  // namespace tfm::data
