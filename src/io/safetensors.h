// Safetensors (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length N,
// N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}},
// then the raw little-endian tensor bytes. Read through a memory map; every header field is
// validated, and errors name the file and the tensor.
// Dtypes: F32, F16, BF16, F64, I64, I32, U8 (BOOL is read as U8). Gaps between tensors' bytes are
// accepted on reading; save_safetensors writes none.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace tfm::io {

struct TensorInfo {
  std::string name;
  DType dtype;
  Shape shape;
  size_t begin = 0;  // byte offsets into the data section
  size_t end = 0;
};

class SafetensorsFile {
 public:
  // Maps the file and validates the whole header (throws tfm::Error naming the file on any problem:
  // too short, header length past the end, bad JSON, unknown dtype, offsets out of range or overlapping,
  // byte count not matching dtype x shape).
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  // In the order of their bytes in the data section (ties, e.g. empty tensors, in header order).
  // For files written by save_safetensors that is the order they were given in.
  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const { return index_.count(name) > 0; }
  const TensorInfo& info(const std::string& name) const;  // throws if absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // Zero-copy view of the mapped bytes in the stored dtype (valid while any copy of this object or
  // of the returned tensor lives). The mapping is read-only: never write through the view.
  // Safetensors does not align tensors, so the view may be misaligned for its dtype (e.g. an F32
  // after a 3-byte U8 tensor); check raw() before using typed pointers, or use get_f32/get_i64,
  // which handle any alignment. A file truncated while mapped makes reads of the view fault.
  Tensor view(const std::string& name) const;
  // A persistent float32 copy (F32, F16, BF16, F64 converted; integer types rejected).
  Tensor get_f32(const std::string& name) const;
  // A persistent int64 copy (I64, I32, U8 converted; float types rejected).
  Tensor get_i64(const std::string& name) const;

 private:
  std::string path_;
  std::shared_ptr<void> map_;   // the mapping; unmapped when the last user goes
  const char* data_ = nullptr;  // start of the data section
  std::vector<std::string> names_;
  std::map<std::string, TensorInfo> index_;
  std::map<std::string, std::string> metadata_;
};

// Writes tensors (any dtype, any strides: they are written contiguous) and string metadata to `path`
// atomically: a temporary file in the same folder, fsync, rename, fsync of the folder.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace tfm::io
